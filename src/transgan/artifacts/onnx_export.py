"""The generator as ONNX: eval mode, output activation included, a dynamic batch axis, and a
check with onnxruntime that its outputs equal PyTorch's on export."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import onnx
import torch
from torch import nn

from transgan.errors import OnnxExportError, first_line
from transgan.sampling import class_labels, generator_class_names, latents

ONNX_OPSET = 17
# Largest |ONNX - PyTorch| difference the export check accepts, and the batch sizes it tries.
ONNX_TOLERANCE = 1e-4
CHECK_BATCHES = (1, 3)


def _inputs(generator: nn.Module, batch: int, seed: int) -> dict[str, torch.Tensor]:
    """Named example inputs: latents ``z`` and, for a class-conditional generator, ``labels``
    cycling through its classes."""
    inputs = {"z": latents(batch, generator.latent_dim, seed=seed)}
    labels = class_labels(batch, getattr(generator, "num_classes", 0))
    if labels is not None:
        inputs["labels"] = labels
    return inputs


def export_onnx(generator: nn.Module, out: Path, opset: int = ONNX_OPSET) -> float:
    """Write ``generator`` (moved to the CPU in eval mode) to ``out`` as ONNX with input ``z``
    (batch, latent_dim), plus int64 ``labels`` (batch,) when it is class-conditional, output
    ``images`` and :func:`onnx_metadata`; returns the largest difference the check saw."""
    generator = generator.cpu().eval()
    inputs = _inputs(generator, 2, seed=0)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings(), torch.no_grad():
            # The tracer notes shape arithmetic it bakes in (head sizes, window counts): only
            # the batch axis varies, and the check below runs two batch sizes.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                generator, tuple(inputs.values()), str(out), input_names=list(inputs),
                output_names=["images"],
                dynamic_axes={**{name: {0: "batch"} for name in inputs}, "images": {0: "batch"}},
                opset_version=opset, dynamo=False,
            )
    except OSError as exc:
        raise OnnxExportError(f"cannot write {out}: {exc.strerror or first_line(exc)}") from None
    except Exception as exc:  # the exporter fails in many ways, one line each
        out.unlink(missing_ok=True)
        raise OnnxExportError(
            f"cannot export {type(generator).__name__} to ONNX (opset {opset}): {first_line(exc)}"
        ) from None
    add_model_props(out, onnx_metadata(generator))
    return check_onnx(generator, out)


def onnx_metadata(generator: nn.Module) -> dict[str, str]:
    """What a runtime needs beside the graph: the latent size and image shape, and the class
    names in label order (a JSON list; empty for an unconditional generator)."""
    return {"library": "transgan", "latent_dim": str(generator.latent_dim),
            "img_size": str(generator.img_size), "channels": str(generator.channels),
            "class_names": json.dumps(generator_class_names(generator))}


def add_model_props(path: Path, props: dict[str, str]) -> None:
    """Write ``props`` into the ONNX file's ``metadata_props`` (onnxruntime's
    ``get_modelmeta().custom_metadata_map``)."""
    model = onnx.load(str(path))
    onnx.helper.set_model_props(model, props)
    onnx.save(model, str(path))


@torch.no_grad()
def check_onnx(generator: nn.Module, path: Path) -> float:
    """Largest |onnxruntime - PyTorch| over a few latents at :data:`CHECK_BATCHES`; an error
    (and no file) when it exceeds :data:`ONNX_TOLERANCE`."""
    try:
        import onnxruntime
    except ImportError:
        raise OnnxExportError("checking the ONNX export needs onnxruntime (pip install "
                              "onnxruntime)") from None
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    worst = 0.0
    for seed, batch in enumerate(CHECK_BATCHES, start=1):
        inputs = _inputs(generator, batch, seed)
        got = torch.from_numpy(session.run(None, {k: v.numpy() for k, v in inputs.items()})[0])
        worst = max(worst, (got - generator(*inputs.values())).abs().max().item())
    if not worst <= ONNX_TOLERANCE:
        path.unlink(missing_ok=True)
        raise OnnxExportError(f"the ONNX export differs from PyTorch by {worst:.2g} "
                              f"(more than {ONNX_TOLERANCE:g}); nothing written")
    return worst
