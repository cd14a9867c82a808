"""Training of TransGAN: augmentation, GAN losses, EMA, schedules and the training loop."""
