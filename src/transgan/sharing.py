"""A trained generator made ready to share: one safetensors file, or a model folder with its
recipe, the metrics ``transgan eval`` measured, a model card and samples."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from transgan.artifacts.loading import open_generator, read_checkpoint, source_file
from transgan.metrics.defaults import run_data
from transgan.metrics.history import most_samples
from transgan.models.folder import generator_metadata, save_weights, write_model_folder
from transgan.train.options import recipe_options
from transgan.train.recipes import chosen_options


def training_summary(options: Mapping[str, Any]) -> dict[str, Any]:
    """The options of a run that shape the model (its recipe), less the preset and data,
    which a model folder records on their own."""
    return {name: value for name, value in recipe_options(options).items()
            if name not in ("preset", "data")}


def export_generator(path: str | Path, out: Path, ema: bool = True) -> Path:
    """Write the (EMA) generator of ``path`` (any form :func:`read_checkpoint` takes) as
    safetensors, its config in the metadata."""
    ckpt = read_checkpoint(path, ema)
    weights = {k: v.contiguous() for k, v in ckpt["G_ema" if ema else "G"].items()}
    metadata = generator_metadata(ckpt["generator_config"],
                                  ckpt.get("counters", {}).get("images", 0),
                                  ckpt["options"].get("preset"), ckpt["options"].get("data"))
    out.parent.mkdir(parents=True, exist_ok=True)
    save_weights(weights, out, metadata)
    return out


def export_folder(path: str | Path, out: Path, ema: bool = True) -> list[Path]:
    """Write the (EMA) generator of ``path`` as a model folder: config, weights, model card with
    the checkpoint's metrics where ``transgan eval`` measured them, and a sample grid."""
    generator, ckpt = open_generator(path, ema=ema)
    options = ckpt.get("options") or {}
    images = int((ckpt.get("counters") or {}).get("images", 0))
    info = {k: v for k, v in (ckpt.get("info") or {}).items() if k != "metrics"}
    data = options.get("data") or None if "source" in info else run_data(ckpt)
    training = training_summary(options)
    info.update({"preset": options.get("preset") or None, "data": data,
                 "images_trained": images, "training": training,
                 "chosen_options": chosen_options(training, options.get("preset")),
                 "weights": info.get("weights") or ("ema" if ema else "raw")})
    metrics = checkpoint_metrics(source_file(path), images) or (ckpt.get("info") or {}).get(
        "metrics")
    if metrics:
        info["metrics"] = metrics
    return write_model_folder(out, generator, info)


def checkpoint_metrics(file: Path, images: int) -> dict[str, Any] | None:
    """The evaluation of the most samples at ``images`` images among those kept beside
    ``file``, with its protocol and file name; ``None`` when there is none."""
    found = most_samples(file.parent, images)
    if found is None:
        return None
    name, record = found
    return {"metrics": record.get("metrics"), "protocol": record.get("protocol"),
            "real_floor": record.get("real_floor"), "file": name}
