"""The generator as ONNX: eval mode, output activation included, a dynamic batch axis, and a
check with onnxruntime that its outputs equal PyTorch's on export."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from transgan.sampling import latents
from transgan.train.checkpoint import CheckpointError

ONNX_OPSET = 17
# Largest |ONNX - PyTorch| difference the export check accepts, and the batch sizes it tries.
ONNX_TOLERANCE = 1e-4
CHECK_BATCHES = (1, 3)


class OnnxExportError(CheckpointError):
    """A generator that cannot be exported to ONNX, or whose export does not match PyTorch."""


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def export_onnx(generator: nn.Module, out: Path, opset: int = ONNX_OPSET) -> float:
    """Write ``generator`` (moved to the CPU in eval mode) to ``out`` as ONNX with input ``z``
    (batch, latent_dim) and output ``images``; returns the largest difference the check saw."""
    generator = generator.cpu().eval()
    z = latents(2, generator.latent_dim, seed=0)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with warnings.catch_warnings(), torch.no_grad():
            # The tracer notes shape arithmetic it bakes in (head sizes, window counts): only
            # the batch axis varies, and the check below runs two batch sizes.
            warnings.simplefilter("ignore")
            torch.onnx.export(
                generator, (z,), str(out), input_names=["z"], output_names=["images"],
                dynamic_axes={"z": {0: "batch"}, "images": {0: "batch"}},
                opset_version=opset, dynamo=False,
            )
    except OSError as exc:
        raise OnnxExportError(f"cannot write {out}: {exc.strerror or _first_line(exc)}") from None
    except Exception as exc:  # the exporter fails in many ways, one line each
        out.unlink(missing_ok=True)
        raise OnnxExportError(
            f"cannot export {type(generator).__name__} to ONNX (opset {opset}): {_first_line(exc)}"
        ) from None
    return check_onnx(generator, out)


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
        z = latents(batch, generator.latent_dim, seed=seed)
        got = torch.from_numpy(session.run(None, {"z": z.numpy()})[0])
        worst = max(worst, (got - generator(z)).abs().max().item())
    if not worst <= ONNX_TOLERANCE:
        path.unlink(missing_ok=True)
        raise OnnxExportError(f"the ONNX export differs from PyTorch by {worst:.2g} "
                              f"(more than {ONNX_TOLERANCE:g}); nothing written")
    return worst
