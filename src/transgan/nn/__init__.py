"""Building blocks shared by the models: attention, transformer blocks, norms."""
