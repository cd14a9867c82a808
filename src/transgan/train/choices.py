"""Names of the losses and precisions a run may choose, free of torch so that the command
line can list them; the loss registry (``train.losses``) is tested to match."""

LOSSES: tuple[str, ...] = ("wgangp-eps", "hinge", "logistic-r1")
PRECISIONS = ("auto", "fp32", "bf16")
