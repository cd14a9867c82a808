"""Checks of a run's options, each group independent so that every problem is reported at
once, before any work starts."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from transgan.errors import ConfigError, DataError, OptionsError, RunProblems
from transgan.models.configs import LOCALITY_BLOCKS
from transgan.nn.choices import LOCALITY_KINDS
from transgan.train.choices import (
    ADAPTIVE,
    AUGMENT_PARAMS,
    LOSSES,
    PENALTIES,
    PRECISIONS,
    SCHEDULES,
    ZERO_CENTRED_LOSSES,
    device_problem,
)
from transgan.train.options import TrainOptions

CHOICES = {
    "loss": LOSSES,
    "penalty": PENALTIES,
    "augment_params": tuple(AUGMENT_PARAMS),
    "locality_kind": LOCALITY_KINDS,
    "locality_blocks": LOCALITY_BLOCKS,
    "precision": PRECISIONS,
    "lr_schedule": SCHEDULES,
    "beta2_schedule": SCHEDULES,
    "gamma_schedule": SCHEDULES,
    "augment_p_schedule": SCHEDULES,
}



class Problems:
    """Collects the user mistakes of independent checks, so that all are reported at once."""

    def __init__(self, known: Sequence[str] = ()) -> None:
        self.found: list[str] = list(known)

    @contextmanager
    def check(self) -> Iterator[None]:
        """Run the block; a user mistake it raises is recorded instead of propagated."""
        try:
            yield
        except (OptionsError, ConfigError, DataError) as exc:
            for problem in getattr(exc, "problems", [str(exc)]):
                if problem not in self.found:
                    self.found.append(problem)

    def raise_any(self) -> None:
        """RunProblems listing everything found, if anything was."""
        if self.found:
            raise RunProblems(self.found)


def _not_positive(opts: TrainOptions, *names: str) -> list[str]:
    """A problem for each option of ``names`` that is set and not positive."""
    return [f"--{name.replace('_', '-')} must be positive, got {opts.value(name)}"
            for name in names if opts.value(name) is not None and opts.value(name) <= 0]


def _positive(opts: TrainOptions, *names: str) -> None:
    """RunProblems naming every option of ``names`` that is set and not positive."""
    if bad := _not_positive(opts, *names):
        raise RunProblems(bad)


def validate(opts: TrainOptions, world_size: int = 1) -> None:
    """Check option values and combinations; RunProblems lists every problem found. (The
    models the options describe are checked where they are built: ``train.parts``.)"""
    problems = Problems()
    for check in (_check_choices, _check_numbers, _check_batches, _check_schedules,
                  _check_augment_p, _check_penalty):
        with problems.check():
            check(opts, world_size)
    problems.raise_any()


def _check_choices(opts: TrainOptions, world_size: int) -> None:
    for name, choices in CHOICES.items():
        if opts.value(name) not in choices:
            raise OptionsError(
                f"unknown {name.replace('_', ' ')} '{opts.value(name)}'; "
                f"choose from {', '.join(choices)}"
            )
    if problem := device_problem(opts.runtime.device):
        raise OptionsError(problem)
    if opts.runtime.cuda_graphs and _on_cpu(opts.runtime.device):
        raise OptionsError("--cuda-graphs needs a CUDA device; this run is on the CPU "
                           "(--compile compiles without graphs)")
    if opts.init_from is not None and not Path(opts.init_from).exists():
        raise OptionsError(f"--init-from: {opts.init_from} does not exist")


def _on_cpu(device: str) -> bool:
    """Whether --device runs on the CPU; torch is asked only for 'auto' (it is slow to load,
    and the other checks answer without it)."""
    if device != "auto":
        return device == "cpu"
    import torch

    return not torch.cuda.is_available()


def _check_numbers(opts: TrainOptions, world_size: int) -> None:
    found = _not_positive(opts, "images", "batch", "g_batch", "accum", "n_critic", "lazy_reg",
                          "lr_g", "lr_d", "log_every", "sample_every", "checkpoint_every",
                          "keep_checkpoints", "num_samples", "ema_half_life", "nonfinite_limit",
                          "resolution", "schedule_images")
    rules = [
        (opts.evaluation.eval_every < 0 or opts.evaluation.eval_num < 2,
         "--eval-every must be >= 0 and --eval-num at least 2"),
        (not opts.outputs.checkpoint_minutes >= 0,
         f"--checkpoint-minutes must be >= 0 (0 = off), got {opts.outputs.checkpoint_minutes}"),
        (opts.runtime.max_rollbacks < 0, "--max-rollbacks must be >= 0"),
        *((opts.value(name) < 0, f"--{name.replace('_', '-')} must be >= 0")
          for name in ("gp_weight", "drift_weight", "r1_gamma", "r2_gamma", "grad_clip",
                       "mtct_weight", "mode_seeking", "lr_end_ratio", "gamma_end_ratio")),
        (not (0 <= opts.optim.beta1 < 1 and 0 <= opts.optim.beta2 < 1),
         "Adam betas must be in [0, 1)"),
        (opts.runtime.workers is not None and opts.runtime.workers < 0, "--workers must be >= 0"),
        (opts.ema.ema_rampup is not None and opts.ema.ema_rampup <= 0,
         "--ema-rampup must be positive"),
        (not (0 <= opts.optim.beta2_start < 1),
         f"--beta2-start must be in [0, 1), got {opts.optim.beta2_start}"),
        (opts.runtime.memory_budget is not None and not opts.runtime.memory_budget > 0,
         f"--memory-budget must be a positive number of GiB, got {opts.runtime.memory_budget}"),
    ]
    found += [message for broken, message in rules if broken]
    if found:
        raise RunProblems(found)


def _check_batches(opts: TrainOptions, world_size: int) -> None:
    g_batch = opts.g_batch or opts.batch
    for label, size in (("--batch", opts.batch), ("--g-batch", g_batch)):
        if size % (world_size * opts.accum):
            raise OptionsError(
                f"{label} {size} is not divisible by {world_size} process(es) x "
                f"{opts.accum} accumulation step(s)"
            )
    if opts.objective.mode_seeking and g_batch % (2 * world_size * opts.accum):
        raise OptionsError(f"--mode-seeking pairs G's samples: --g-batch {g_batch} must be "
                           f"divisible by 2 x {world_size} process(es) x {opts.accum} "
                           "accumulation step(s)")


def _check_schedules(opts: TrainOptions, world_size: int) -> None:
    if opts.objective.mtct_until is not None and opts.objective.mtct_until < 0:
        raise OptionsError("--mtct-until must be >= 0")
    parse_stages(opts.locality_init.locality_stages)


def augment_probability(text: str | None) -> float | None:
    """--augment-p as a fixed probability (None: adaptive or unset); OptionsError if bad."""
    if text is None or text == ADAPTIVE:
        return None
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise OptionsError(f"--augment-p must be '{ADAPTIVE}' or a number in [0, 1], got {text!r}")
    return value


def _check_augment_p(opts: TrainOptions, world_size: int = 1) -> None:
    augmentation = opts.augmentation
    augment_probability(augmentation.augment_p)
    if augmentation.augment_p is not None and augmentation.augment.strip().lower() in ("", "none"):
        raise OptionsError("--augment-p needs a DiffAugment policy (--augment is none)")
    if not 0.0 <= augmentation.ada_target <= 1.0:
        raise OptionsError(f"--ada-target must be in [0, 1], got {augmentation.ada_target}")
    _positive(opts, "ada_interval", "ada_speed")
    if (augmentation.augment_p_schedule != "constant"
            and augment_probability(augmentation.augment_p) is None):
        raise OptionsError("--augment-p-schedule ramps up to a fixed probability: give "
                           "--augment-p FLOAT")


def _check_penalty(opts: TrainOptions, world_size: int = 1) -> None:
    objective = opts.objective
    if objective.penalty == "finite-difference" and objective.loss not in ZERO_CENTRED_LOSSES:
        raise OptionsError(f"--penalty finite-difference stands for the zero-centred penalties "
                           f"of {' and '.join(ZERO_CENTRED_LOSSES)}; --loss {objective.loss} "
                           "keeps its own (choose --penalty exact)")
    if not objective.penalty_sigma > 0:
        raise OptionsError(f"--penalty-sigma must be positive, got {objective.penalty_sigma}")


def parse_stages(text: str) -> list[int] | None:
    """'all' -> None; 'last' -> [-1]; '0,-1' -> [0, -1]."""
    if text == "all":
        return None
    if text == "last":
        return [-1]
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        raise OptionsError(
            f"--locality-stages must be 'last', 'all' or a comma list of stage indices, "
            f"got '{text}'"
        ) from None


