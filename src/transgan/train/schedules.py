"""Training schedules: the locality (attention window) schedule, the MT-CT switch-off point,
and the learning rate, Adam's beta2, the regulariser weight and the augmentation probability
as functions of the images seen (constant, linear decay or R3GAN's cosines)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from transgan.counts import parse_count
from transgan.errors import ScheduleError
from transgan.nn.attention import LOCALITY_KINDS
from transgan.train.options import AugmentOptions, OptimOptions
from transgan.train.validation import augment_probability

# Official TransGAN v1 schedules: (epoch at which the window stops applying, window).
# "official": TransGAN_8_8_1 (CIFAR-10) and TransGAN_8_8_G2_1 (STL-10);
# "official-celeba64": Celeba64_TransGAN.
OFFICIAL_LOCALITY_EPOCHS: dict[str, tuple[tuple[int, int], ...]] = {
    "official": ((22, 4), (32, 6), (42, 8), (60, 10)),
    "official-celeba64": ((5, 8), (10, 12), (15, 16), (20, 20)),
}


@dataclass(frozen=True)
class LocalitySchedule:
    """Attention window that widens with training progress; None means full attention."""

    steps: tuple[tuple[int, int], ...]
    kind: str = "band"

    def __post_init__(self) -> None:
        try:
            steps = tuple((until, window) for until, window in self.steps)
        except (TypeError, ValueError):
            raise ScheduleError("schedule steps must be (until_images, window) pairs") from None
        object.__setattr__(self, "steps", steps)
        if self.kind not in LOCALITY_KINDS:
            raise ScheduleError(f"unknown locality kind {self.kind!r}; "
                                f"choose from {', '.join(LOCALITY_KINDS)}")
        previous = 0
        for until, window in steps:
            if not isinstance(until, int) or not isinstance(window, int):
                raise ScheduleError(f"schedule step {(until, window)} must hold two integers")
            if until <= previous:
                raise ScheduleError("schedule thresholds must be positive and strictly increasing")
            if window < 1:
                raise ScheduleError(f"locality window must be >= 1, got {window}")
            previous = until

    def window_at(self, images_seen: int) -> int | None:
        """Window of the first step not yet passed, or None (full attention) after the last."""
        for until, window in self.steps:
            if images_seen < until:
                return window
        return None

    @classmethod
    def official(
        cls, name: str = "official", dataset_size: int = 50_000, kind: str = "band"
    ) -> LocalitySchedule:
        """An official epoch schedule (:data:`OFFICIAL_LOCALITY_EPOCHS`) in images seen."""
        if name not in OFFICIAL_LOCALITY_EPOCHS:
            raise ScheduleError(
                f"unknown schedule {name!r}; choose from {', '.join(OFFICIAL_LOCALITY_EPOCHS)}"
            )
        if dataset_size < 1:
            raise ScheduleError(f"dataset_size must be >= 1, got {dataset_size}")
        epochs = OFFICIAL_LOCALITY_EPOCHS[name]
        return cls(tuple((epoch * dataset_size, window) for epoch, window in epochs), kind)

    @classmethod
    def parse(cls, text: str, kind: str = "band") -> LocalitySchedule:
        """Parse "until:window,..." such as "1.1M:4,1.6M:6"; "none" or "" means no schedule."""
        stripped = text.strip()
        if stripped.lower() in ("", "none"):
            return cls((), kind)
        steps = []
        for item in stripped.split(","):
            until_text, sep, window_text = item.partition(":")
            if not sep:
                raise ScheduleError(f"bad schedule item {item.strip()!r}; expected until:window")
            try:
                window = int(window_text.strip())
            except ValueError:
                raise ScheduleError(f"bad window {window_text.strip()!r} in {text!r}") from None
            steps.append((_parse_images(until_text, text), window))
        return cls(tuple(steps), kind)


def _parse_images(value: str, text: str) -> int:
    """An image count such as "1100000", "1.1M" or "500k" as an exact integer."""
    try:
        return parse_count(value)
    except ValueError as exc:
        raise ScheduleError(f"bad image count in {text!r}: {exc}") from None


def mtct_active(images_seen: int, until_images: int | None) -> bool:
    """Whether the MT-CT term still applies: None keeps it always on, 0 keeps it off."""
    return until_images is None or images_seen < until_images


def cosine(images: int, start: float, end: float, total: int) -> float:
    """R3GAN's cosine from ``start`` at 0 images to ``end`` at ``total``, then ``end``:
    start + (1 - (1 + cos(pi t / T)) / 2) (end - start)."""
    if images >= total:
        return end
    decay = 0.5 * (1.0 + math.cos(math.pi * images / total))
    return start + (1.0 - decay) * (end - start)


def ramp(kind: str, images: int, start: float, end: float, total: int) -> float:
    """A schedule's value after ``images``: ``start`` throughout when ``kind`` is constant,
    else from ``start`` at 0 images to ``end`` at ``total`` on a line or a cosine, then ``end``."""
    if kind == "constant":
        return start
    if kind == "linear":
        return end if images >= total else start + images / total * (end - start)
    return cosine(images, start, end, total)


@dataclass(frozen=True)
class ScheduledValues:
    """What the schedules set for the next training cycle."""

    lr_g: float
    lr_d: float
    beta2: float
    gamma_scale: float  # multiplies the regulariser's weights
    augment_p: float | None  # None: not scheduled (every sample, or adaptive)


def scheduled_values(optim: OptimOptions, augmentation: AugmentOptions, run_images: int,
                     images: int) -> ScheduledValues:
    """The learning rates, beta2, regulariser scale and augmentation probability after
    ``images`` real images of a run of ``run_images``: pure functions of the count, so a
    resumed run continues them."""
    total = optim.schedule_images or run_images
    lr_scale = ramp(optim.lr_schedule, images, 1.0, optim.lr_end_ratio, total)
    beta2 = (optim.beta2 if optim.beta2_schedule == "constant" else
             ramp(optim.beta2_schedule, images, optim.beta2_start, optim.beta2, total))
    gamma_scale = ramp(optim.gamma_schedule, images, 1.0, optim.gamma_end_ratio, total)
    augment_p = None
    if augmentation.augment_p_schedule != "constant":
        augment_p = ramp(augmentation.augment_p_schedule, images, 0.0,
                         augment_probability(augmentation.augment_p) or 0.0, total)
    return ScheduledValues(optim.lr_g * lr_scale, optim.lr_d * lr_scale, beta2, gamma_scale,
                           augment_p)
