"""The model a run gets from its data when no preset is named, and how a named preset is
fitted to the data: channels follow the data, the resolution is said, nothing is silent.

On a CPU the tiny family is chosen (32 px unless --resolution asks for 64); on CUDA the
paper's preset of the resolution. The resolution is the largest of the family's sizes not
above the data's median shorter side (the smallest size for smaller pictures).
"""

from __future__ import annotations

from dataclasses import dataclass

from transgan.data import colour_name, is_digits_spec
from transgan.data.profile import DataProfile
from transgan.models import get_preset, list_presets
from transgan.models.presets import TINY_SIZES

# Presets chosen for the data by resolution, on a CPU and on CUDA.
CPU_FAMILY: dict[int, str] = {size: f"tiny-{size}" for size in TINY_SIZES}
GPU_FAMILY: dict[int, str] = {
    32: "transgan-s", 48: "transgan-stl10", 64: "transgan-celeba64",
    128: "transgan-v2-celeba128", 256: "transgan-v2-church256",
}
# The largest side a CPU run picks by itself: 64 px trains several times slower.
CPU_AUTO_MAX = 32
# The embedded digits keep their own recipe (unconditional unless --conditional).
DIGITS_PRESET = "digits"


@dataclass(frozen=True)
class DataFit:
    """A preset for the data, the channels its models are built for (None: the preset's),
    the lines that say so at the start of the run, and problems to report before it."""

    preset: str
    channels: int | None
    notes: tuple[str, ...]
    problems: tuple[str, ...] = ()


def family(device_type: str) -> dict[int, str]:
    """Resolution -> preset of the models chosen for data on this kind of device."""
    return GPU_FAMILY if device_type == "cuda" else CPU_FAMILY


def pick_resolution(side: int, device_type: str) -> int:
    """The family size for pictures of median shorter side ``side``."""
    sizes = sorted(family(device_type))
    if device_type != "cuda":
        sizes = [s for s in sizes if s <= CPU_AUTO_MAX]
    fitting = [s for s in sizes if s <= side]
    return fitting[-1] if fitting else sizes[0]


def presets_of_size(resolution: int) -> list[str]:
    """Names of the presets whose models make ``resolution`` px images."""
    return [name for name in list_presets()
            if get_preset(name).architecture.img_size == resolution]


def choose(spec: str, profile: DataProfile | None, device_type: str,
           resolution: int | None) -> DataFit:
    """The preset for data ``spec`` with no --preset given, and why; a --resolution the
    device's family does not make is a problem naming the sizes and presets on offer."""
    if is_digits_spec(spec) and resolution is None:
        fit = fit_preset(DIGITS_PRESET, spec, profile)
        return DataFit(fit.preset, fit.channels,
                       (f"model for {spec}: preset {DIGITS_PRESET}", *fit.notes))
    device = "CUDA" if device_type == "cuda" else "a CPU"
    sizes = family(device_type)
    problems: tuple[str, ...] = ()
    if resolution is not None and resolution not in sizes:
        others = presets_of_size(resolution)
        problems = (f"--resolution {resolution}: the models chosen for data on {device} are "
                    + ", ".join(f"{s} px ({p})" for s, p in sizes.items())
                    + (f"; name a {resolution} px preset with --preset ({', '.join(others)})"
                       if others else "; pick one of those sizes"),)
    if resolution in sizes:
        size, how = resolution, "--resolution"
    else:
        size = pick_resolution(profile.side if profile else 0, device_type)
        how = f"pictures of median side {profile.side} px" if profile else "data unread"
    preset = sizes[size]
    arch = get_preset(preset).architecture
    channels = profile.channels if profile else arch.channels
    more = ("; --resolution 64 for larger pictures (about 3x slower)"
            if device_type != "cuda" and resolution is None and size < max(CPU_FAMILY) else "")
    notes = ((f"{spec}: {profile.describe()}",) if profile else ()) + (
        f"model chosen for the data: {preset}, {size} px "
        f"{colour_name(channels)} ({how}, on {device}){more}; "
        "--preset to choose another",)
    return DataFit(preset, channels if channels != arch.channels else None, notes, problems)


def fit_preset(preset: str, spec: str, profile: DataProfile | None) -> DataFit:
    """A named preset on data ``spec``: its channels follow the data's, with a line saying so."""
    arch = get_preset(preset).architecture
    if profile is None:
        return DataFit(preset, None, ())
    notes = []
    channels = None
    if profile.channels != arch.channels:
        channels = profile.channels
        notes.append(f"preset {preset} makes {colour_name(arch.channels)} "
                     f"images; built for {spec}'s {profile.colour} images instead "
                     f"({channels} channel{'s' if channels > 1 else ''})")
    if profile.side != arch.img_size:
        notes.append(f"{spec}: images of median side {profile.side} px are resized to "
                     f"{preset}'s {arch.img_size} px")
    return DataFit(preset, channels, tuple(notes))
