"""The names the building blocks accept (attention implementations, locality kinds, norms,
activations), kept free of torch so that configs and the command line can list them."""

ATTENTION_IMPLS = ("sdpa", "naive")
LOCALITY_KINDS = ("band", "square")
NORMS = ("layernorm", "pixelnorm", "rmsnorm", "none")
ACTIVATIONS = ("gelu", "leakyrelu")
