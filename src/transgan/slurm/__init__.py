"""Training and experiments on a Slurm cluster: the launcher's options (``options``, free of
torch) and the jobs (``jobs``)."""
