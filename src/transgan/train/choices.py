"""Names of the losses, precisions and devices a run may choose, free of torch so that the
command line can list them; the loss registry (``train.losses``) is tested to match."""

LOSSES: tuple[str, ...] = ("wgangp-eps", "hinge", "logistic-r1", "rpgan")
# Training schedules: constant, or a cosine from a start value to an end value.
SCHEDULES: tuple[str, ...] = ("constant", "cosine")
PRECISIONS = ("auto", "fp32", "bf16")
# The devices that train.distributed.resolve_device takes: --device of every command.
DEVICE_HELP = "auto (CUDA when present, else the CPU) | cpu | cuda | cuda:N"
