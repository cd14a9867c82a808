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
