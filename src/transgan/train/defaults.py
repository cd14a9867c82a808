"""Defaults of the ADA controller and the loss weights, in one home free of torch: the option
table (``train.options``) offers them to the command line and YAML files, and the modules that
use them (``train.ada``, ``train.losses``) fall back on them when built without options."""

from __future__ import annotations

# Adaptive augmentation (StyleGAN2-ADA): the target of E[sign(D(x_real))], the D steps
# between adjustments of p, and the real images for p to go from 0 to 1.
ADA_TARGET = 0.6
ADA_INTERVAL = 4
ADA_SPEED = 500_000

# WGAN-GP with drift (the official TransGAN loss): penalty and drift weights.
GP_WEIGHT = 10.0
DRIFT_WEIGHT = 1e-3
# Logistic loss with R1: the weight gamma (the loss adds gamma / 2 times the penalty).
R1_GAMMA = 10.0
# Relativistic pairing with R1 and R2 (R3GAN, Huang et al. 2024): the weight gamma of each
# penalty on its own (the loss adds gamma / 2 times each).
R2_GAMMA = 10.0
# The finite-difference penalty's step: D(x + sigma e) - D(x) with e ~ N(0, I) on images in
# [-1, 1] (GAT, "Scalable GANs with Transformers", arXiv 2509.24935: sigma 0.01).
PENALTY_SIGMA = 0.01
# R3GAN's cosine schedules (its CIFAR-10 preset): the learning rate falls to 1/4 (2e-4 to
# 5e-5), Adam's beta2 rises from 0.9, gamma falls to 1/10.
LR_END_RATIO = 0.25
BETA2_START = 0.9
GAMMA_END_RATIO = 0.1
