"""Checkpoints of the official TransGAN code: infer each architecture from its tensors, map the
weights onto this library's models, and write them as safetensors with their configs.

The official checkpoints do not store their constructor arguments. Everything that shapes a
tensor (latent size, widths, depths, bottom grid, resolution, patch, MLP ratio, qkv bias,
relative position bias, LayerNorm vs PixelNorm, noise injection) is read from the tensors;
what leaves no trace in them (attention heads, activation) takes the official default (4
heads, GELU) and can be overridden.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import save_file
from torch import Tensor

from transgan.models import (
    DiscriminatorConfig,
    GeneratorConfig,
    TransformerDiscriminator,
    TransformerGenerator,
    config_to_dict,
)
from transgan.models.build import apply_overrides
from transgan.models.presets import PRESETS
from transgan.nn.attention import relative_position_index
from transgan.train.checkpoint import CheckpointError, safe_torch_load

GENERATOR_FILE = "generator.safetensors"
DISCRIMINATOR_FILE = "discriminator.safetensors"
GENERATOR_FORMAT = "transgan-generator-v1"
DISCRIMINATOR_FORMAT = "transgan-discriminator-v1"
WEIGHTS = ("ema", "raw")
# Top-level entries of an official training checkpoint that hold no model weights.
_NON_MODEL_ENTRIES = (
    "epoch", "best_fid", "gen_model", "dis_model", "gen_optimizer", "dis_optimizer",
    "path_helper", "fixed_z", "train_global_steps", "valid_global_steps",
)
# Stage blocks: v1 "blocks.J.x" / "upsample_blocks.S.J.x"; v2 adds ".block." before J.
_G_BLOCK = re.compile(r"^(?:blocks|upsample_blocks\.(\d+))\.(?:block\.)?(\d+)\.(.+)$")
_D_BLOCK = re.compile(r"^(blocks|blocks_1|blocks_2|last_block)\.(\d+)\.(.+)$")
_D_BLOCK_TARGET = {"blocks": "blocks", "blocks_1": "fine_blocks", "blocks_2": "blocks",
                   "last_block": "cls_blocks"}


class ConversionError(CheckpointError):
    """An official checkpoint that cannot be converted; one line naming the reason."""


@dataclass
class Converted:
    """A network converted from an official state dict."""

    config: GeneratorConfig | DiscriminatorConfig
    state: dict[str, Tensor]
    version: str
    dropped: list[str] = field(default_factory=list)
    added: list[str] = field(default_factory=list)


def read_official(path: str | Path) -> dict[str, Any]:
    """Load an official checkpoint without running code from it (tensors and plain data)."""
    state = safe_torch_load(path, numpy_scalars=True)  # the official code saves a numpy FID
    if not isinstance(state, dict):
        raise ConversionError(f"{path} holds a {type(state).__name__}, not a checkpoint dict")
    return state


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


def _block_tensor(rest: str, value: Tensor) -> tuple[str, Tensor] | None:
    """Our name and value for one tensor of an official block; None for recomputed buffers."""
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
        return None
    raise KeyError(rest)


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


def convert_generator(
    official: Mapping[str, Any], overrides: Mapping[str, Any] | None = None
) -> Converted:
    """Our generator config and state dict for an official generator state dict."""
    state = _strip_prefix(official, "generator")
    version = _version(state)
    l1 = _need(state, "l1.weight", "generator")
    out = _need(state, "deconv.0.weight", "generator")
    stage_keys: dict[int, set[int]] = {}
    for key in state:
        match = _G_BLOCK.match(key)
        if match:
            stage = 0 if match.group(1) is None else int(match.group(1)) + 1
            stage_keys.setdefault(stage, set()).add(int(match.group(2)))
    if not stage_keys or sorted(stage_keys) != list(range(len(stage_keys))):
        raise ConversionError("generator stages are missing or not numbered 0, 1, ...")
    depths = tuple(len(stage_keys[s]) for s in sorted(stage_keys))
    pos = _need(state, "pos_embed_1", "generator")
    bottom = _side(pos.shape[1], "pos_embed_1")
    width = pos.shape[2]
    first = "blocks.block.0." if version == "v2" else "blocks.0."
    info = _block_info(state, first)
    rel = info["window"] is not None
    if rel and info["window"] != bottom:
        raise ConversionError(
            f"relative position window {info['window']} differs from the {bottom}x{bottom} grid"
        )
    fields: dict[str, Any] = {
        "img_size": bottom * 2 ** (len(depths) - 1), "channels": out.shape[0],
        "latent_dim": l1.shape[1], "bottom": bottom, "width": width, "depths": depths,
        "mlp_ratio": info["mlp_ratio"], "norm": info["norm"], "qkv_bias": info["qkv_bias"],
        "rel_pos_bias": rel, "output_act": "none",
    }
    cfg = _apply(GeneratorConfig(**fields), overrides, "generator")
    mapped: dict[str, Tensor] = {}
    dropped: list[str] = []
    for key, value in state.items():
        target = _generator_target(key, value, dropped)
        if target is not None:
            mapped[target[0]] = target[1]
    return _finish(TransformerGenerator(cfg), mapped, version, dropped, "generator")


def _generator_target(
    key: str, value: Tensor, dropped: list[str]
) -> tuple[str, Tensor] | None:
    if key.startswith("to_rgb."):
        dropped.append(key)  # v1's BatchNorm head, never used in its forward pass
        return None
    if key == "l1.weight" or key == "l1.bias":
        return f"latent_to_tokens.{key[3:]}", value
    if key in ("deconv.0.weight", "deconv.0.bias"):
        return f"to_image.{key[9:]}", value.flatten(1) if value.dim() == 4 else value
    pos = re.fullmatch(r"pos_embed_(\d+)", key)
    if pos:
        return f"stages.{int(pos.group(1)) - 1}.pos_embed", value
    match = _G_BLOCK.match(key)
    if match:
        stage = 0 if match.group(1) is None else int(match.group(1)) + 1
        try:
            result = _block_tensor(match.group(3), value)
        except KeyError:
            raise ConversionError(f"cannot map generator tensor '{key}'") from None
        if result is None:
            _check_index(key, value)
            dropped.append(key)
            return None
        return f"stages.{stage}.blocks.{match.group(2)}.{result[0]}", result[1]
    raise ConversionError(f"cannot map generator tensor '{key}'")


def convert_discriminator(
    official: Mapping[str, Any], overrides: Mapping[str, Any] | None = None
) -> Converted:
    """Our discriminator config and state dict for an official discriminator state dict."""
    state = _strip_prefix(official, "discriminator")
    _need(state, "cls_token", "discriminator")
    multiscale = "fRGB_1.weight" in state
    if multiscale:
        embed = state["fRGB_1.weight"]
        width = _need(state, "pos_embed_2", "discriminator").shape[2]
        fine_side = _side(_need(state, "pos_embed_1", "discriminator").shape[1], "pos_embed_1")
        first, depth_key = "blocks_1.0.", "blocks_1"
    else:
        embed = _need(state, "patch_embed.weight", "discriminator")
        width = embed.shape[0]
        fine_side = _side(_need(state, "pos_embed", "discriminator").shape[1] - 1, "pos_embed")
        first, depth_key = "blocks.0.", "blocks"
    patch = embed.shape[-1]
    depth = len({k.split(".")[1] for k in state if k.startswith(depth_key + ".")})
    info = _block_info(state, first)
    if info["window"] is not None and info["window"] != fine_side:
        raise ConversionError(
            f"relative position window {info['window']} differs from the "
            f"{fine_side}x{fine_side} patch grid"
        )
    fields: dict[str, Any] = {
        "img_size": fine_side * patch, "channels": embed.shape[1], "patch": patch,
        "width": width, "depth": depth, "mlp_ratio": info["mlp_ratio"], "norm": info["norm"],
        "qkv_bias": info["qkv_bias"], "multiscale": multiscale,
        "rel_pos_bias": info["window"] is not None, "noise": info["noise"],
    }
    cfg = _apply(DiscriminatorConfig(**fields), overrides, "discriminator")
    mapped: dict[str, Tensor] = {}
    dropped: list[str] = []
    renames = {"fRGB_1.": "fine_embed.", "fRGB_2.": "coarse_embed.", "norm.norm.": "norm."}
    for key, value in state.items():
        match = _D_BLOCK.match(key)
        if match:
            try:
                result = _block_tensor(match.group(3), value)
            except KeyError:
                raise ConversionError(f"cannot map discriminator tensor '{key}'") from None
            if result is None:
                _check_index(key, value)
                dropped.append(key)
                continue
            target = f"{_D_BLOCK_TARGET[match.group(1)]}.{match.group(2)}.{result[0]}"
            mapped[target] = result[1]
        elif key in ("pos_embed_1", "pos_embed_2"):
            mapped["fine_pos" if key == "pos_embed_1" else "pos_embed"] = value
        else:
            prefix = next((p for p in renames if key.startswith(p)), None)
            mapped[key if prefix is None else renames[prefix] + key[len(prefix):]] = value
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


@dataclass
class OfficialCheckpoint:
    """An official checkpoint converted: generator, optional discriminator, what was left."""

    generator: Converted
    discriminator: Converted | None
    weights: str
    epoch: int | None
    ignored: list[str]


def convert_checkpoint(
    path: str | Path,
    weights: str = "ema",
    gen_overrides: Mapping[str, Any] | None = None,
    disc_overrides: Mapping[str, Any] | None = None,
) -> OfficialCheckpoint:
    """Convert an official checkpoint (or a bare official generator state dict)."""
    if weights not in WEIGHTS:
        raise ConversionError(f"unknown weights '{weights}'; choose from {', '.join(WEIGHTS)}")
    state = read_official(path)
    if "gen_state_dict" in state or "avg_gen_state_dict" in state:
        key = "avg_gen_state_dict" if weights == "ema" else "gen_state_dict"
        if key not in state:
            raise ConversionError(f"{path} has no '{key}' (choose the other --weights)")
        generator = convert_generator(state[key], gen_overrides)
        dis = state.get("dis_state_dict")
        discriminator = None if dis is None else convert_discriminator(dis, disc_overrides)
        known = {"gen_state_dict", "avg_gen_state_dict", "dis_state_dict", *_NON_MODEL_ENTRIES}
        unknown = sorted(set(state) - known)
        if unknown:
            raise ConversionError(f"cannot map checkpoint entry '{unknown[0]}'")
        ignored = sorted(k for k in state if k in _NON_MODEL_ENTRIES)
        epoch = state.get("epoch")
        return OfficialCheckpoint(generator, discriminator, weights,
                                  int(epoch) if isinstance(epoch, int | float) else None, ignored)
    if any(k.removeprefix("module.") == "l1.weight" for k in state):
        return OfficialCheckpoint(convert_generator(state, gen_overrides), None, "as saved",
                                  None, [])
    first = next(iter(state), "<empty>")
    raise ConversionError(f"{path} is not an official TransGAN checkpoint (first key '{first}')")


def _matching_preset(config: Any, part: str) -> str:
    """Name of the preset whose ``part`` config equals ``config``, or ''."""
    for name, preset in PRESETS.items():
        if getattr(preset, part) == config:
            return name
    return ""


def save_converted(converted: OfficialCheckpoint, out: Path, source: str) -> list[Path]:
    """Write DIR/generator.safetensors and DIR/discriminator.safetensors with configs."""
    out.mkdir(parents=True, exist_ok=True)
    common = {"source": source, "official_version": converted.generator.version,
              "official_epoch": "" if converted.epoch is None else str(converted.epoch)}
    g = converted.generator
    g_meta = {"format": GENERATOR_FORMAT, "generator_config": json.dumps(config_to_dict(g.config)),
              "preset": _matching_preset(g.config, "generator"), "data": "", "images": "0",
              "weights": converted.weights, **common}
    paths = [out / GENERATOR_FILE]
    save_file({k: v.contiguous() for k, v in g.state.items()}, str(paths[0]), metadata=g_meta)
    if converted.discriminator is not None:
        d = converted.discriminator
        d_meta = {"format": DISCRIMINATOR_FORMAT,
                  "discriminator_config": json.dumps(config_to_dict(d.config)),
                  "preset": _matching_preset(d.config, "discriminator"), **common}
        paths.append(out / DISCRIMINATOR_FILE)
        save_file({k: v.contiguous() for k, v in d.state.items()}, str(paths[1]),
                  metadata=d_meta)
    return paths


def describe(config: Any) -> str:
    """A short summary of a converted config's fields for the command's report."""
    data = dataclasses.asdict(config)
    data.pop("attention", None)
    return ", ".join(f"{k}={v}" for k, v in data.items())
