"""DiffAugment: differentiable colour, translation, cutout and erasing for every D input."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from transgan.errors import AugmentError
from transgan.train.ada import AdaController, AdaSettings
from transgan.train.choices import ADAPTIVE, AUGMENT_PARAMS, AugmentParams
from transgan.train.distributed import WHOLE_BATCH, BatchShare, DistInfo
from transgan.train.options import AugmentOptions
from transgan.train.validation import augment_probability

# erase_ratio and stl_erase_ratio are the official TransGAN v2 rectangles (church / STL-10).
POLICY_NAMES: tuple[str, ...] = ("color", "translation", "cutout", "erase_ratio", "stl_erase_ratio")


def parse_policy(policy: str) -> tuple[str, ...]:
    """Split a comma-separated policy into transform names, rejecting unknown or repeated ones."""
    text = policy.strip().lower()
    if text in ("", "none"):
        return ()
    names = tuple(part.strip() for part in text.split(","))
    valid = ", ".join(POLICY_NAMES)
    for name in names:
        if name not in POLICY_NAMES:
            raise AugmentError(f"unknown augmentation {name!r} in {policy!r}; choose from {valid}")
    if len(set(names)) != len(names):
        raise AugmentError(f"augmentation policy {policy!r} names a transform twice")
    return names


def _resolve_params(params: str | AugmentParams) -> AugmentParams:
    if isinstance(params, AugmentParams):
        return params
    if params not in AUGMENT_PARAMS:
        valid = ", ".join(AUGMENT_PARAMS)
        raise AugmentError(f"unknown augmentation parameter set {params!r}; choose from {valid}")
    return AUGMENT_PARAMS[params]


def _tiled(draw: Tensor, copies: int) -> Tensor:
    """Per-sample draws repeated for ``copies`` stacked copies of the batch."""
    return draw if copies == 1 else draw.repeat(copies, *(1,) * (draw.dim() - 1))


def _per_sample_uniform(x: Tensor, low: float, high: float, share: BatchShare,
                        copies: int = 1) -> Tensor:
    """One uniform number per sample, shaped (B, 1, 1, 1) to broadcast over an image batch."""
    u = _tiled(share.rand(x.shape[0] // copies, 1, 1, 1, dtype=x.dtype, device=x.device), copies)
    return u * (high - low) + low


def _color(x: Tensor, share: BatchShare, copies: int = 1) -> Tensor:
    """Random brightness, then saturation, then contrast, one draw per sample each."""
    x = x + _per_sample_uniform(x, -0.5, 0.5, share, copies)
    pixel_mean = x.mean(dim=1, keepdim=True)
    x = (x - pixel_mean) * _per_sample_uniform(x, 0.0, 2.0, share, copies) + pixel_mean
    image_mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - image_mean) * _per_sample_uniform(x, 0.5, 1.5, share, copies) + image_mean


def _translate(x: Tensor, ratio: float, share: BatchShare, copies: int = 1) -> Tensor:
    """Shift each sample by a random integer offset per axis, filling exposed pixels with zero."""
    b, c, h, w = x.shape
    max_h = int(h * ratio + 0.5)
    max_w = int(w * ratio + 0.5)
    if max_h == 0 and max_w == 0:
        return x
    shift_h = _tiled(share.randint(-max_h, max_h + 1, b // copies, 1, device=x.device), copies)
    shift_w = _tiled(share.randint(-max_w, max_w + 1, b // copies, 1, device=x.device), copies)
    # Output pixel i reads padded pixel i - shift + pad; the padding supplies the zero fill.
    padded = F.pad(x, (max_w, max_w, max_h, max_h))
    rows = torch.arange(h, device=x.device) - shift_h + max_h
    cols = torch.arange(w, device=x.device) - shift_w + max_w
    row_index = rows.view(b, 1, h, 1).expand(b, c, h, padded.shape[3])
    x = padded.gather(2, row_index)
    col_index = cols.view(b, 1, 1, w).expand(b, c, h, w)
    return x.gather(3, col_index)


def _erase_sides(name: str, h: int, w: int, ratio: float) -> tuple[int, int]:
    """Rectangle sides: cutout's fixed ratio, or the official v2 erasers' random sides
    (one draw per batch, from the CPU generator so CUDA inputs never sync)."""
    if name == "cutout":
        return int(h * ratio + 0.5), int(w * ratio + 0.5)
    if name == "erase_ratio":
        bounds = ((int(h * 0.2), int(h * 0.7)), (int(w * 0.2), int(w * 0.7)))
    else:
        bounds = ((20, h // 2 + 20), (20, w // 2 + 20))
    return tuple(int(torch.randint(lo, hi + 1, ()).item()) for lo, hi in bounds)  # type: ignore[return-value]


def _cutout(x: Tensor, side_h: int, side_w: int, share: BatchShare, copies: int = 1) -> Tensor:
    """Zero one side_h x side_w rectangle per sample at a uniform random centre, clipped at
    the border; as the official code, an even side's centre may also sit on the far edge."""
    b, _, h, w = x.shape
    if side_h == 0 or side_w == 0:
        return x
    top = _tiled(share.randint(0, h + 1 - side_h % 2, b // copies, 1, device=x.device),
                 copies) - side_h // 2
    left = _tiled(share.randint(0, w + 1 - side_w % 2, b // copies, 1, device=x.device),
                  copies) - side_w // 2
    rows = torch.arange(h, device=x.device)
    cols = torch.arange(w, device=x.device)
    in_rows = (rows >= top) & (rows < top + side_h)
    in_cols = (cols >= left) & (cols < left + side_w)
    inside = in_rows.view(b, 1, h, 1) & in_cols.view(b, 1, 1, w)
    return x * (~inside).to(x.dtype)


def _some_samples(x: Tensor, out: Tensor, p: Tensor, share: BatchShare,
                  copies: int = 1) -> Tensor:
    """``out`` for a random fraction p of the samples, ``x`` for the others."""
    u = _tiled(share.rand(x.shape[0] // copies, 1, 1, 1, dtype=x.dtype, device=x.device), copies)
    return torch.where(u < p.to(x.device), out, x)


class DiffAugment(nn.Module):
    """Differentiable augmentation, fresh randomness per call, for every input of D.

    ``p`` (None: every transform on every sample) applies each transform to each sample with
    that probability; it is a device tensor so an adaptive controller can change it in place
    without the host waiting for the device.

    ``share`` says which rows of the global batch this process holds: the draws are made
    for the global batch, so N processes augment as one process would.
    """

    def __init__(
        self, policy: str = "translation,cutout,color", params: str | AugmentParams = "transgan",
        share: BatchShare = WHOLE_BATCH, p: float | Tensor | None = None,
    ) -> None:
        super().__init__()
        self.policy = parse_policy(policy)
        self.params = _resolve_params(params)
        self.p: Tensor | None = None if p is None else torch.as_tensor(p, dtype=torch.float32)
        self.share = share

    def forward(self, x: Tensor, copies: int = 1) -> Tensor:
        """Augment a (B, C, H, W) batch, transforms in the policy's order (as the official
        code: ``translation,cutout,color`` colours the cut-out region too).

        ``copies`` > 1: the batch is that many copies of B / copies samples stacked (e.g. images
        and their perturbed twins), each copy of a sample transformed with the same draws.
        """
        if x.dim() != 4:
            shape = tuple(x.shape)
            raise AugmentError(f"DiffAugment expects a (B, C, H, W) batch, got shape {shape}")
        if copies < 1 or x.shape[0] % copies:
            raise AugmentError(f"a batch of {x.shape[0]} is not {copies} copies of one batch")
        for name in self.policy:
            if name == "color":
                out = _color(x, self.share, copies)
            elif name == "translation":
                out = _translate(x, self.params.translation_ratio, self.share, copies)
            elif self._cutout_coin():
                h, w = x.shape[-2:]
                out = _cutout(x, *_erase_sides(name, h, w, self.params.cutout_ratio), self.share,
                              copies)
            else:
                continue
            x = out if self.p is None else _some_samples(x, out, self.p, self.share, copies)
        return x

    def _cutout_coin(self) -> bool:
        """One coin for the whole batch, drawn on the CPU generator so CUDA inputs never sync."""
        prob = self.params.cutout_prob
        if prob >= 1.0:
            return True
        if prob <= 0.0:
            return False
        return bool(torch.rand(()).item() < prob)

    def extra_repr(self) -> str:
        policy = ",".join(self.policy) or "none"
        p = "" if self.p is None else f", p={float(self.p):.3f}"
        return f"policy={policy!r}, params={self.params}{p}"


def augmentation(options: AugmentOptions, batch: int, dist: DistInfo
                 ) -> tuple[AdaController | None, DiffAugment | None]:
    """The adaptive controller (with --augment-p adaptive) and DiffAugment (None with
    --augment none) the options describe."""
    ada = (AdaController(AdaSettings(options.ada_target, options.ada_interval, options.ada_speed),
                         batch, dist.device, dist.share)
           if options.augment_p == ADAPTIVE else None)
    p = ada.p if ada is not None else augment_probability(options.augment_p)
    augment = (DiffAugment(options.augment, options.augment_params, dist.share, p=p)
               if parse_policy(options.augment) else None)
    return ada, augment
