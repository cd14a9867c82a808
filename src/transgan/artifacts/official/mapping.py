"""Official TransGAN state dicts -> this library's configs and state dicts.

The official checkpoints do not store their constructor arguments. Everything that shapes a
tensor (latent size, widths, depths, bottom grid, resolution, patch, MLP ratio, qkv bias,
relative position bias and its grid windows, LayerNorm vs PixelNorm, noise injection, the
discriminator's scales) is read from the tensors;
what leaves no trace in them (attention heads, activation) takes the official default (4
heads, GELU) and can be overridden.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from transgan.errors import ConversionError
from transgan.models import (
    DiscriminatorConfig,
    GeneratorConfig,
    TransformerDiscriminator,
    TransformerGenerator,
)
from transgan.models.config_dicts import apply_overrides
from transgan.nn.attention import relative_position_index

# Stage blocks: v1 "blocks.J.x" / "upsample_blocks.S.J.x"; v2 adds ".block." before J; the
# 256 px files number their stages "blocks_K.block.J.x" from K = 1.
_G_BLOCK = re.compile(
    r"^(?:blocks|upsample_blocks\.(\d+)|blocks_(\d+))\.(?:block\.)?(\d+)\.(.+)$"
)


@dataclass
class Converted:
    """A network converted from an official state dict."""

    config: GeneratorConfig | DiscriminatorConfig
    state: dict[str, Tensor]
    version: str
    dropped: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)


def _strip_prefix(state: Mapping[str, Any], what: str) -> dict[str, Tensor]:
    """Drop DataParallel / DDP ``module.`` prefixes; every value must be a tensor."""
    out: dict[str, Tensor] = {}
    for key, value in state.items():
        if not isinstance(value, Tensor):
            raise ConversionError(f"{what} entry '{key}' is not a tensor")
        out[key.removeprefix("module.")] = value
    return out


def _side(tokens: int, what: str) -> int:
    side = math.isqrt(tokens)
    if side * side != tokens:
        raise ConversionError(f"{what} has {tokens} tokens, not a square grid")
    return side


def _need(state: Mapping[str, Tensor], key: str, what: str) -> Tensor:
    if key not in state:
        raise ConversionError(f"{what} lacks '{key}'; not an official TransGAN {what}")
    return state[key]


_CROSS_ATTENTION = {"q_transform": "q", "k_transform": "k", "v_transform": "v", "proj": "proj"}


def _block_tensor(key: str, rest: str, value: Tensor) -> tuple[str, Tensor] | None:
    """Our name and value for tensor ``rest`` of an official block (full name ``key``); None
    for tensors left out: recomputed index buffers (checked) and the CelebA-HQ 256
    generator's cross-attention noise strength, which its forward pass never uses."""
    norm = re.fullmatch(r"(norm[12])(?:\.norm)?\.(weight|bias)", rest)
    if norm:
        return f"{norm.group(1)}.{norm.group(2)}", value
    if re.fullmatch(r"(attn\.(qkv|proj)|mlp\.fc[12])\.(weight|bias)", rest):
        return rest, value
    if rest == "attn.relative_position_bias_table":
        return "attn.rel_bias_table", value.t().contiguous()
    if rest == "attn.noise_strength_1":
        return "attn.noise_strength", value.reshape(())
    if rest == "attn.relative_position_index":
        _check_index(key, value)
        return None
    if rest == "cross_attention.noise_strength_1":
        return None
    cross = re.fullmatch(r"cross_attention\.(\w+)\.(weight|bias)", rest)
    if cross and cross.group(1) in _CROSS_ATTENTION:
        return f"cross_attn.{_CROSS_ATTENTION[cross.group(1)]}.{cross.group(2)}", value
    raise ConversionError(f"cannot map tensor '{key}'")


def _check_index(key: str, value: Tensor) -> None:
    """An official relative-position index buffer must equal the one we recompute."""
    window = _side(value.shape[0], key)
    if not torch.equal(value.long(), relative_position_index(window, window)):
        raise ConversionError(f"'{key}' differs from the recomputed relative position index")


def _block_info(state: Mapping[str, Tensor], prefix: str) -> dict[str, Any]:
    """Width, MLP ratio, qkv bias, norm and relative-bias window of the block at ``prefix``."""
    qkv = _need(state, f"{prefix}attn.qkv.weight", "block")
    width = qkv.shape[1]
    hidden = _need(state, f"{prefix}mlp.fc1.weight", "block").shape[0]
    table = state.get(f"{prefix}attn.relative_position_bias_table")
    has_norm = f"{prefix}norm1.weight" in state or f"{prefix}norm1.norm.weight" in state
    return {
        "width": width,
        "mlp_ratio": hidden / width,
        "qkv_bias": f"{prefix}attn.qkv.bias" in state,
        "norm": "layernorm" if has_norm else "pixelnorm",
        "window": None if table is None else (math.isqrt(table.shape[0]) + 1) // 2,
        "noise": f"{prefix}attn.noise_strength_1" in state,
    }


def _version(state: Mapping[str, Tensor]) -> str:
    """v2 files wrap stage blocks in ``.block.`` and norms in ``.norm.``; v1 files do neither."""
    v2_names = (".block.", ".norm.", "blocks.block.", "fRGB_1.")
    return "v2" if any(part in key for key in state for part in v2_names) else "v1"


def _g_stage(match: re.Match[str]) -> int:
    """Stage index of a generator block key matched by ``_G_BLOCK``."""
    if match.group(2) is not None:  # blocks_K: the 256 px files number stages from 1
        return int(match.group(2)) - 1
    return 0 if match.group(1) is None else int(match.group(1)) + 1


def _generator_fields(state: Mapping[str, Tensor]) -> dict[str, Any]:
    """Generator config fields read from an official generator's tensors."""
    l1 = _need(state, "l1.weight", "generator")
    out = _need(state, "deconv.0.weight", "generator")
    pos = []
    while f"pos_embed_{len(pos) + 1}" in state:
        pos.append(state[f"pos_embed_{len(pos) + 1}"])
    if not pos:
        raise ConversionError("generator lacks 'pos_embed_1'; not an official TransGAN generator")
    sides = [_side(p.shape[1], f"pos_embed_{i + 1}") for i, p in enumerate(pos)]
    widths = [p.shape[2] for p in pos]
    blocks: dict[int, dict[int, str]] = {}
    for key in state:
        match = _G_BLOCK.match(key)
        if match:
            prefix = key[: len(key) - len(match.group(4))]
            blocks.setdefault(_g_stage(match), {})[int(match.group(3))] = prefix
    if not blocks or max(blocks) >= len(pos) or min(blocks) < 0:
        raise ConversionError("generator blocks do not match its position embeddings")
    depths = tuple(len(blocks.get(s, {})) for s in range(len(pos)))
    bicubic = 0
    while bicubic + 1 < len(widths) and widths[bicubic + 1] == widths[bicubic]:
        bicubic += 1
    infos = {s: _block_info(state, blocks[s][0]) for s in blocks}
    first = infos[min(infos)]
    windows = {s: info["window"] for s, info in infos.items() if info["window"] is not None}
    grid = {s: w for s, w in windows.items() if w < sides[s]}
    for s, window in windows.items():
        if window > sides[s]:
            raise ConversionError(f"stage {s} relative position window {window} exceeds its "
                                  f"{sides[s]}x{sides[s]} grid")
    fields: dict[str, Any] = {
        "img_size": sides[-1], "channels": out.shape[0], "latent_dim": l1.shape[1],
        "bottom": sides[0], "width": widths[0], "depths": depths, "bicubic_stages": bicubic,
        "mlp_ratio": first["mlp_ratio"], "norm": first["norm"], "qkv_bias": first["qkv_bias"],
        "rel_pos_bias": bool(windows), "output_act": "none",
        "noise": any(key.endswith("attn.noise_strength_1") and "cross_attention" not in key
                     for key in state),
    }
    if grid:
        if len(set(grid.values())) > 1:
            raise ConversionError(f"stages use different attention windows {sorted(grid.values())}")
        window = next(iter(grid.values()))
        fields["grid_window"] = window
        if sorted(grid) != [s for s, side in enumerate(sides) if side > window]:
            fields["grid_stages"] = tuple(sorted(grid))
    if "embedding_transform.weight" in state:
        # Official Celeba256_gen: a low-pass before every PixelShuffle but the first, which
        # leaves no trace in the tensors.
        fields.update(latent_modulation=True,
                      smooth_upscales=tuple(range(bicubic + 2, len(pos))))
    return fields


def convert_generator(
    official: Mapping[str, Any], overrides: Mapping[str, Any] | None = None
) -> Converted:
    """Our generator config and state dict for an official generator state dict."""
    state = _strip_prefix(official, "generator")
    cfg = _apply(GeneratorConfig(**_generator_fields(state)), overrides, "generator")
    mapped: dict[str, Tensor] = {}
    dropped: list[str] = []
    for key, value in state.items():
        target = _generator_target(key, value)
        if target is None:
            dropped.append(key)
        else:
            mapped[target[0]] = target[1]
    return _finish(TransformerGenerator(cfg), mapped, _version(state), dropped, "generator")


_G_RENAMES = {"l1.": "latent_to_tokens.", "embedding_transform.": "latent_to_context.",
              "deconv.0.": "to_image."}


def _generator_target(key: str, value: Tensor) -> tuple[str, Tensor] | None:
    if key.startswith("to_rgb."):
        return None  # v1's BatchNorm head, never used in its forward pass
    if key == "embed_pos":
        return "context_pos", value
    prefix = next((p for p in _G_RENAMES if key.startswith(p)), None)
    if prefix is not None:
        value = value.flatten(1) if value.dim() == 4 else value  # 1x1 conv -> linear
        return _G_RENAMES[prefix] + key[len(prefix):], value
    pos = re.fullmatch(r"pos_embed_(\d+)", key)
    if pos:
        return f"stages.{int(pos.group(1)) - 1}.pos_embed", value
    match = _G_BLOCK.match(key)
    if match:
        result = _block_tensor(key, match.group(4), value)
        if result is None:
            return None
        return f"stages.{_g_stage(match)}.blocks.{match.group(3)}.{result[0]}", result[1]
    raise ConversionError(f"cannot map generator tensor '{key}'")


def _single_scale_fields(state: Mapping[str, Tensor]) -> dict[str, Any]:
    embed = _need(state, "patch_embed.weight", "discriminator")
    side = _side(_need(state, "pos_embed", "discriminator").shape[1] - 1, "pos_embed")
    info = _block_info(state, "blocks.0.")
    if info["window"] is not None and info["window"] != side:
        raise ConversionError(
            f"relative position window {info['window']} differs from the {side}x{side} grid"
        )
    depth = len({k.split(".")[1] for k in state if k.startswith("blocks.")})
    return {"img_size": side * embed.shape[-1], "channels": embed.shape[1],
            "patch": embed.shape[-1], "width": embed.shape[0], "depth": depth,
            "rel_pos_bias": info["window"] is not None, **_common_fields(info)}


def _common_fields(info: dict[str, Any]) -> dict[str, Any]:
    return {"mlp_ratio": info["mlp_ratio"], "norm": info["norm"],
            "qkv_bias": info["qkv_bias"], "noise": info["noise"]}


def _stage_blocks(state: Mapping[str, Tensor], stage: int) -> list[str]:
    """Key prefixes of scale ``stage``'s blocks in order: ``blocks_S.j`` then ``blocks_S1.j``
    (the official 3-scale discriminators' extra full-attention block)."""
    prefixes = []
    for group in (f"blocks_{stage}", f"blocks_{stage}1"):
        count = len({k.split(".")[1] for k in state if k.startswith(group + ".")})
        prefixes += [f"{group}.{j}." for j in range(count)]
    return prefixes


def _multiscale_fields(
    state: Mapping[str, Tensor],
) -> tuple[dict[str, Any], dict[str, str]]:
    """Config fields of an official multi-scale D and its block renames (theirs -> ours)."""
    embeds = []
    while f"fRGB_{len(embeds) + 1}.weight" in state:
        embeds.append(state[f"fRGB_{len(embeds) + 1}.weight"])
    if len(embeds) < 2:
        raise ConversionError("a multi-scale discriminator needs fRGB_1 and fRGB_2")
    patch = embeds[1].shape[-1] // 2
    overlap = embeds[0].shape[-1] == 2 * patch
    for i, embed in enumerate(embeds):
        expected = 2 * patch if i == 0 and overlap else patch * 2**i
        if embed.shape[-1] != expected:
            raise ConversionError(f"fRGB_{i + 1} has kernel {embed.shape[-1]}, expected {expected}")
    widths = tuple(e.shape[0] for e in embeds)
    sides = [_side(_need(state, f"pos_embed_{i + 1}", "discriminator").shape[1],
                   f"pos_embed_{i + 1}") for i in range(len(embeds))]
    renames: dict[str, str] = {}
    depths, grid_blocks, grid_windows = [], [], set()
    for stage, side in enumerate(sides):
        prefixes = _stage_blocks(state, stage + 1)
        if not prefixes:
            raise ConversionError(f"discriminator scale {stage + 1} has no blocks")
        depths.append(len(prefixes))
        windowed = 0
        for j, prefix in enumerate(prefixes):
            renames[prefix] = f"stages.{stage}.{j}."
            window = _block_info(state, prefix)["window"]
            if window is not None and window < side:
                windowed += 1
                grid_windows.add(window)
        grid_blocks.append(windowed)
    renames["last_block.0."] = "cls_blocks.0."
    info = _block_info(state, "blocks_1.0.")
    rel = info["window"] is not None
    fields: dict[str, Any] = {
        "img_size": sides[0] * patch, "channels": embeds[0].shape[1], "patch": patch,
        "width": sum(widths), "depth": depths[0], "multiscale": True, "overlap_embed": overlap,
        "rel_pos_bias": rel, **_common_fields(info),
    }
    if widths != (fields["width"] // 4 * 3, fields["width"] // 4):
        fields["scale_widths"] = widths
    if len(set(depths)) > 1 or len(depths) != 2:
        fields["scale_depths"] = tuple(depths)
    if len(grid_windows) > 1:
        raise ConversionError(f"scales use different attention windows {sorted(grid_windows)}")
    if grid_windows:
        fields.update(grid_window=grid_windows.pop(), grid_blocks=tuple(grid_blocks))
    elif not rel and overlap and "blocks_21.0.attn.qkv.weight" in state:
        # Official Celeba256_dis: windows without a bias table leave no trace in the tensors.
        fields.update(grid_window=4, grid_blocks=(depths[0], depths[1] - 1, 0))
    return fields, renames


# Buffers of the official discriminators' augmentation filters, not model weights.
_AUGMENT_BUFFERS = ("Hz_fbank", "Hz_geom")


def convert_discriminator(
    official: Mapping[str, Any], overrides: Mapping[str, Any] | None = None
) -> Converted:
    """Our discriminator config and state dict for an official discriminator state dict."""
    state = _strip_prefix(official, "discriminator")
    _need(state, "cls_token", "discriminator")
    if "fRGB_1.weight" in state:
        fields, renames = _multiscale_fields(state)
        renames.update({f"fRGB_{i + 1}.": f"embeds.{i}." for i in range(3)})
        renames.update({f"pos_embed_{i + 1}": f"stage_pos.{i}" for i in range(3)})
    else:
        fields, renames = _single_scale_fields(state), {"blocks.": "blocks."}
    renames["norm.norm."] = "norm."
    cfg = _apply(DiscriminatorConfig(**fields), overrides, "discriminator")
    mapped: dict[str, Tensor] = {}
    dropped: list[str] = []
    for key, value in state.items():
        if key in _AUGMENT_BUFFERS:
            dropped.append(key)
            continue
        prefix = next((p for p in renames if key.startswith(p)), None)
        target = key if prefix is None else renames[prefix] + key[len(prefix):]
        block = re.fullmatch(r"((?:blocks|stages\.\d+|cls_blocks)\.\d+)\.(.+)", target)
        if block:
            result = _block_tensor(key, block.group(2), value)
            if result is None:
                dropped.append(key)
                continue
            target, value = f"{block.group(1)}.{result[0]}", result[1]
        mapped[target] = value
    return _finish(TransformerDiscriminator(cfg), mapped, _version(state), dropped,
                   "discriminator")


def _apply(cfg: Any, overrides: Mapping[str, Any] | None, what: str) -> Any:
    try:
        return apply_overrides(cfg, dict(overrides or {}), what)
    except ValueError as exc:
        raise ConversionError(f"the inferred {what} is not supported: {exc}") from None


def _finish(
    model: torch.nn.Module, mapped: dict[str, Tensor], version: str, dropped: list[str],
    what: str,
) -> Converted:
    """Check ``mapped`` against ``model``'s state dict; tensors only we have are reported."""
    expected = model.state_dict()
    unexpected = sorted(set(mapped) - set(expected))
    if unexpected:
        raise ConversionError(f"cannot map {what} tensor '{unexpected[0]}'")
    for key, value in mapped.items():
        if value.shape != expected[key].shape:
            raise ConversionError(
                f"{what} tensor '{key}' has shape {tuple(value.shape)}, expected "
                f"{tuple(expected[key].shape)}"
            )
    added = sorted(set(expected) - set(mapped))
    missing = [k for k in added if not k.startswith("image_to_tokens.")]
    if missing:
        raise ConversionError(f"the official {what} has no tensor for '{missing[0]}'")
    state = {k: mapped[k].float() if k in mapped else expected[k] for k in expected}
    config = model.config  # type: ignore[attr-defined]
    return Converted(config, state, version, dropped, added)
