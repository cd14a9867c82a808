"""The ``README.md`` model card of a model folder: what the model is, how it was trained, its
metrics with their protocol, samples, and how to load it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_TYPE_NAMES = {"transformer-g": "TransGAN transformer generator",
               "cnn-g": "ResNet CNN generator (SNGAN/AutoGAN family)"}


def _front_matter(config: Mapping[str, Any]) -> list[str]:
    lines = ["---", "library_name: transgan", "pipeline_tag: unconditional-image-generation",
             "tags:", "- gan", "- transgan", "- pytorch"]
    if config.get("data"):
        lines.append(f"- {config['data']}")
    return [*lines, "---", ""]


def _range(generator: Mapping[str, Any]) -> str:
    if generator.get("output_act") == "none":
        return "of about [-1, 1] (no output activation: clamp when writing images)"
    return "in [-1, 1]"


def _weights(weights: str | None) -> str:
    return {"ema": "the EMA generator", "raw": "the raw generator G"}.get(
        str(weights), f"generator weights {weights}")


def _summary(config: Mapping[str, Any], params: int) -> list[str]:
    g = config["generator"]
    kind = _TYPE_NAMES.get(g.get("type"), "generator")
    preset = f" of the `{config['preset']}` preset" if config.get("preset") else ""
    lines = [f"# {config.get('preset') or 'transgan'} generator", "",
             f"A {kind}{preset}: a {g['latent_dim']}-d standard normal latent to a "
             f"{g['img_size']} x {g['img_size']} image with {g['channels']} "
             f"channel{'s' if g['channels'] > 1 else ''} {_range(g)}; {params:,} parameters."]
    if config.get("source"):
        epoch = config.get("official_epoch")
        lines.append(f"Converted from the official TransGAN {config.get('official_version', '')} "
                     f"checkpoint `{config['source']}`{f' (epoch {epoch})' if epoch else ''}: "
                     f"{_weights(config.get('weights'))}.")
    return [*lines, ""]


def _training(config: Mapping[str, Any]) -> list[str]:
    if not config.get("training") and not config.get("images_trained"):
        return []
    lines = ["## Training", ""]
    if config.get("data"):
        lines.append(f"- data: `{config['data']}`")
    lines.append(f"- images shown to the discriminator: {int(config.get('images_trained', 0)):,}")
    if config.get("weights"):
        lines.append(f"- weights: {_weights(config['weights'])}")
    for name, value in (config.get("training") or {}).items():
        lines.append(f"- {name}: `{value}`")
    return [*lines, ""]


def _metrics(config: Mapping[str, Any]) -> list[str]:
    record = config.get("metrics")
    if not record:
        return ["## Metrics", "", "Not evaluated yet: `transgan eval` writes them beside the "
                "checkpoint, and a later export carries them here.", ""]
    protocol = record.get("protocol") or {}
    values = record.get("metrics") or {}
    lines = ["## Metrics", "", "| metric | value |", "| --- | --- |"]
    lines += [f"| {name} | {value:.4g} |" for name, value in values.items()
              if not name.endswith("_std") and isinstance(value, int | float)]
    lines += ["", f"Protocol: {protocol.get('num_samples', '?')} samples of latent seed "
              f"{protocol.get('seed', '?')} against `{protocol.get('reference', '?')}`"]
    for name, extractor in (protocol.get("extractors") or {}).items():
        sha = str(extractor.get("weights_sha256", ""))[:16]
        lines.append(f"features `{name}` (weights sha256 {sha}...)")
    return [*lines, f"(from `{record.get('file', 'transgan eval')}`).", ""]


def _usage(samples: bool, num_classes: int) -> list[str]:
    lines = ["## Samples", "", "![samples](samples.png)", ""] if samples else []
    call = "generator(torch.randn(16, generator.latent_dim)"
    if num_classes:
        lines += [f"Class-conditional: {num_classes} classes; the generator takes the class "
                  "index of every image as `labels`.", ""]
        call += f", torch.arange(16) % {num_classes}"
    return [*lines, "## Use", "", "```python", "import torch", "import transgan", "",
            "generator = transgan.load_generator(\"path/to/this/folder\")",
            f"images = {call})  # [-1, 1]", "```", "",
            "or `transgan sample path/to/this/folder --grid --out grid.png`.", ""]


def render_card(config: Mapping[str, Any], params: int, samples: bool) -> str:
    """Markdown model card for a folder whose ``config.json`` holds ``config``."""
    return "\n".join([*_front_matter(config), *_summary(config, params), *_training(config),
                      *_metrics(config),
                      *_usage(samples, int(config["generator"].get("num_classes") or 0))])
