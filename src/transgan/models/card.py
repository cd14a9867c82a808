"""The ``README.md`` model card of a model folder: what the model is, how it was trained, its
metrics with their protocol, samples, its classes, and how to load it."""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from typing import Any

import yaml

from transgan.data.specs import is_digits_spec

# The sample grid of a card: rows of CARD_COLUMNS images of latent seed 0, one row per class
# of a class-conditional generator (the first CARD_CLASS_ROWS classes at most).
CARD_COLUMNS = 8
CARD_CLASS_ROWS = 20
_TYPE_NAMES = {"transformer-g": "TransGAN transformer generator",
               "cnn-g": "ResNet CNN generator (SNGAN/AutoGAN family)"}


def _front_matter(config: Mapping[str, Any], num_classes: int) -> list[str]:
    # The Hub's pipelines take nothing (unconditional-image-generation) or a prompt
    # (text-to-image), none a class index: a class-conditional model names no pipeline and
    # says what it is in its tags.
    lines = ["---", "library_name: transgan"]
    if not num_classes:
        lines.append("pipeline_tag: unconditional-image-generation")
    lines += ["tags:", "- gan", "- transgan", "- pytorch"]
    if num_classes:
        lines += ["- class-conditional", "- image-generation"]
    # A named data set is a tag; a user's folder or zip (folder:pics) names nothing shared.
    if config.get("data") and ":" not in config["data"]:
        lines.append(f"- {config['data']}")
    return [*lines, "---", ""]


def _range(generator: Mapping[str, Any]) -> str:
    if generator.get("output_act") == "none":
        return "of about [-1, 1] (no output activation: clamp when writing images)"
    return "in [-1, 1]"


def _weights(weights: str | None) -> str:
    return {"ema": "the EMA generator", "raw": "the raw generator G"}.get(
        str(weights), f"generator weights {weights}")


def _summary(config: Mapping[str, Any], params: int, num_classes: int) -> list[str]:
    g = config["generator"]
    kind = _TYPE_NAMES.get(g.get("type"), "generator")
    preset = f" of the `{config['preset']}` preset" if config.get("preset") else ""
    label = f" and one of {num_classes} class labels" if num_classes else ""
    lines = [f"# {config.get('preset') or 'transgan'} generator", "",
             f"A {kind}{preset}: a {g['latent_dim']}-d standard normal latent{label} to a "
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
    if not config.get("training"):
        return [*lines, ""]
    preset = config.get("preset")
    chosen = config.get("chosen_options") or {}
    given = (f"what `--preset {preset}` sets (its recipe over transgan's defaults)" if preset
             else "transgan's defaults")
    with_preset = f" with `--preset {preset}`" if preset else ""
    lines += ["", f"The run's options that shape the model, where they differ from {given}, "
              f"in the YAML that `transgan train{with_preset} --config` reads (`config.json` "
              "lists every one):", ""]
    if chosen:
        lines += ["```yaml", yaml.safe_dump(chosen, sort_keys=False).rstrip(), "```"]
    else:
        lines.append("None: every option as transgan and the preset set it.")
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


def _class_names(generator: Mapping[str, Any]) -> list[str]:
    """The generator's class names, empty where they are only its labels as text (digits)."""
    names = [str(name) for name in generator.get("class_names") or []]
    return [] if names == [str(k) for k in range(len(names))] else names


def _classes(config: Mapping[str, Any], num_classes: int) -> list[str]:
    """What the labels of a class-conditional generator mean and how to draw one class."""
    data = config.get("data")
    names = _class_names(config["generator"])
    k = min(3, num_classes - 1)
    if names:
        meaning = [f"Class-conditional: {num_classes} classes; its labels and class names, in "
                   f"the order of its training data{f' `{data}`' if data else ''}:", "",
                   "| label | class |", "|---|---|",
                   *(f"| {label} | {name} |" for label, name in enumerate(names)), ""]
        chosen = names[k]
    else:
        order = f"the class order of its training data `{data}`" if data else "its class order"
        digits = " (label k draws the digit k)" if data and is_digits_spec(str(data)) else ""
        meaning = [f"Class-conditional: {num_classes} classes, labels 0 to {num_classes - 1} in "
                   f"{order}{digits}."]
        chosen = str(k)
    return ["## Classes", "", *meaning,
            f"The generator takes one label per image; 16 images of class {chosen}:",
            "", "```python", "images = generator(torch.randn(16, generator.latent_dim), "
            f"torch.full((16,), {k}))", "```", "",
            f"or `transgan sample path/to/this/folder --class {shlex.quote(chosen)} --num 16 "
            f"--out class-{k}`; without `--class`, a `--grid` has one row per class.", ""]


def card_grid_rows(num_classes: int) -> int:
    """Rows of :data:`CARD_COLUMNS` images in a card's sample grid: one per class shown (at
    most :data:`CARD_CLASS_ROWS`), else two."""
    return min(num_classes, CARD_CLASS_ROWS) if num_classes else 2


def _samples(generator: Mapping[str, Any], num_classes: int) -> list[str]:
    lines = ["## Samples", "", "![samples](samples.png)", ""]
    if num_classes:
        shown = card_grid_rows(num_classes)
        names = _class_names(generator)
        first = ", ".join(names[:shown]) if names else f"0 to {shown - 1}"
        which = "every class" if shown == num_classes else f"classes {first}"
        lines += [f"One row per class, {which} in turn; latent seed 0.", ""]
    return lines


def _use(num_classes: int) -> list[str]:
    call = "generator(torch.randn(16, generator.latent_dim)"
    if num_classes:
        call += f", torch.arange(16) % {num_classes}"
    return ["## Use", "", "```python", "import torch", "import transgan", "",
            "generator = transgan.load_generator(\"path/to/this/folder\")",
            f"images = {call})  # [-1, 1]", "```", "",
            "or `transgan sample path/to/this/folder --grid --out grid.png`.", ""]


def render_card(config: Mapping[str, Any], params: int, samples: bool) -> str:
    """Markdown model card for a folder whose ``config.json`` holds ``config``; ``params``
    counts every parameter of the generator."""
    num_classes = int(config["generator"].get("num_classes") or 0)
    return "\n".join([*_front_matter(config, num_classes), *_summary(config, params, num_classes),
                      *_training(config), *_metrics(config),
                      *(_samples(config["generator"], num_classes) if samples else []),
                      *(_classes(config, num_classes) if num_classes else []),
                      *_use(num_classes)])
