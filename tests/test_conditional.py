"""Class-conditional generators and discriminators, class labels for sampling and data labels."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import Tensor, nn

from transgan.artifacts.loading import load_generator
from transgan.data import build_dataset
from transgan.errors import ConfigError, DataError
from transgan.models import (
    CNNDiscriminator,
    CNNDiscriminatorConfig,
    CNNGenerator,
    CNNGeneratorConfig,
    DiscriminatorConfig,
    GeneratorConfig,
    TransformerDiscriminator,
    TransformerGenerator,
    config_from_dict,
    config_to_dict,
)
from transgan.sampling import class_labels, generate

LATENT = 32
CLASSES = 10


def _build(kind: str, num_classes: int = 0) -> nn.Module:
    torch.manual_seed(0)
    if kind == "G":
        return TransformerGenerator(GeneratorConfig(
            img_size=16, latent_dim=LATENT, bottom=4, width=32, depths=(1, 1, 1), heads=2,
            num_classes=num_classes))
    if kind == "G-modulated":
        return TransformerGenerator(GeneratorConfig(
            img_size=8, latent_dim=LATENT, bottom=4, width=32, depths=(1, 1), heads=2,
            latent_modulation=True, num_classes=num_classes))
    if kind == "D":
        return TransformerDiscriminator(DiscriminatorConfig(
            img_size=16, patch=4, width=32, depth=2, heads=2, num_classes=num_classes))
    if kind == "D-multiscale":
        return TransformerDiscriminator(DiscriminatorConfig(
            img_size=16, patch=2, width=32, depth=1, heads=2, multiscale=True,
            num_classes=num_classes))
    if kind == "CNN-G":
        return CNNGenerator(CNNGeneratorConfig(
            img_size=16, latent_dim=LATENT, width=16, bottom=4, num_classes=num_classes))
    return CNNDiscriminator(CNNDiscriminatorConfig(img_size=16, width=16, num_classes=num_classes))


def _input(kind: str, batch: int = 3) -> Tensor:
    gen = torch.Generator().manual_seed(1)
    if "G" in kind:
        return torch.randn(batch, LATENT, generator=gen)
    return torch.randn(batch, 3, 16, 16, generator=gen)


# Taken from the models before class conditioning existed: a hash of the parameter names
# (their order included) and the sum and absolute sum of a seeded output.
UNCONDITIONAL = {
    "G": ("e5e109e829407ad6", -498.528230, 2139.728029),
    "D": ("2c096d9bb4d2bee8", 0.177714, 0.177714),
    "D-multiscale": ("1ce900a38e4bbd46", 0.675981, 0.675981),
    "CNN-G": ("d1aab1f11d3cddf8", 117.250092, 1179.481835),
    "CNN-D": ("d062098d10bb5ac4", 15.052993, 15.052993),
}


@pytest.mark.parametrize("kind", sorted(UNCONDITIONAL))
def test_unconditional_models_are_unchanged(kind: str) -> None:
    model = _build(kind).eval()
    names = ",".join(name for name, _ in model.named_parameters())
    with torch.no_grad():
        out = model(_input(kind)).double()
    digest, total, magnitude = UNCONDITIONAL[kind]
    assert hashlib.sha256(names.encode()).hexdigest()[:16] == digest
    assert out.sum().item() == pytest.approx(total, rel=1e-4, abs=1e-4)
    assert out.abs().sum().item() == pytest.approx(magnitude, rel=1e-4, abs=1e-4)


@pytest.mark.parametrize("kind", ["G", "G-modulated", "CNN-G"])
def test_conditional_generator_follows_its_labels(kind: str) -> None:
    model = _build(kind, CLASSES).eval()
    z = _input(kind, 1).repeat(2, 1)
    with torch.no_grad():
        images = model(z, torch.tensor([0, 1]))
        again = model(z, torch.tensor([0, 0]))
    side = model.img_size
    assert images.shape == (2, 3, side, side)
    assert not torch.allclose(images[0], images[1])
    assert torch.allclose(images[0], again[1])


def test_super_resolution_needs_no_labels() -> None:
    model = _build("G", CLASSES).eval()
    assert model.super_resolve(torch.zeros(2, 3, 4, 4)).shape == (2, 3, 16, 16)


@pytest.mark.parametrize("kind", ["D", "D-multiscale", "CNN-D"])
def test_projection_discriminator(kind: str) -> None:
    """logit = head(h) + <embed(y), h>, h the features the head reads."""
    model = _build(kind, CLASSES).eval()
    head = model.fc if kind == "CNN-D" else model.head
    seen: list[Tensor] = []
    head.register_forward_pre_hook(lambda _, args: seen.append(args[0]))
    x, labels = _input(kind), torch.tensor([0, 3, 9])
    with torch.no_grad():
        logits = model(x, labels)
        h = seen[0]
        expected = head(h).squeeze(1) + (model.class_embed.weight[labels] * h).sum(dim=1)
        other = model(x, torch.tensor([1, 3, 9]))
    assert logits.shape == (3,)
    torch.testing.assert_close(logits, expected)
    assert logits[0] != other[0] and torch.equal(logits[1:], other[1:])


@pytest.mark.parametrize("kind", ["G", "D", "CNN-G", "CNN-D"])
def test_bad_labels_are_one_line_errors(kind: str) -> None:
    model, x = _build(kind, CLASSES), _input(kind, 2)
    cases = [
        (None, "needs labels"),
        (torch.tensor([0, 10]), "class 10 is out of range: the model has 10 classes (0 to 9)"),
        (torch.tensor([0, -1]), "class -1 is out of range"),
        (torch.tensor([0.0, 1.0]), "integer class indices"),
        (torch.tensor([0]), "shape (2,)"),
    ]
    for labels, message in cases:
        with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
            model(x, labels)
    with pytest.raises(ConfigError, match="unconditional"):
        _build(kind)(x, torch.tensor([0, 1]))


def test_num_classes_must_not_be_negative() -> None:
    for make in (GeneratorConfig, DiscriminatorConfig, CNNGeneratorConfig,
                 CNNDiscriminatorConfig):
        with pytest.raises(ConfigError, match="num_classes must be an integer >= 0"):
            make(num_classes=-1)


def test_class_labels_cycle_and_fill_rows() -> None:
    assert class_labels(5, 0) is None
    assert class_labels(12, 10).tolist() == [*range(10), 0, 1]
    assert class_labels(5, 10, classes=[7]).tolist() == [7] * 5
    # Three columns per row: row r holds classes[r].
    assert class_labels(9, 10, classes=[4, 2], repeat=3).tolist() == [4, 4, 4, 2, 2, 2, 4, 4, 4]
    with pytest.raises(ConfigError, match="class 10 is out of range"):
        class_labels(4, 10, classes=[3, 10])
    with pytest.raises(ConfigError, match="unconditional"):
        class_labels(4, 0, classes=[1])


def test_generate_passes_labels_batch_by_batch() -> None:
    model = _build("G", CLASSES).eval()
    z, labels = _input("G", 5), class_labels(5, CLASSES, classes=[2, 6])
    with torch.no_grad():
        whole = model(z, labels)
    torch.testing.assert_close(generate(model, z, batch=2, labels=labels), whole)
    with pytest.raises(ConfigError):
        generate(model, z, labels=labels[:4])


def test_saved_generator_keeps_its_classes(tmp_path: Path) -> None:
    model = _build("G", CLASSES).eval()
    assert config_from_dict(config_to_dict(model.config)) == model.config
    model.save_pretrained(tmp_path / "model", samples=True)
    loaded = load_generator(tmp_path / "model")
    assert loaded.num_classes == CLASSES
    z, labels = _input("G"), torch.tensor([1, 5, 8])
    with torch.no_grad():
        torch.testing.assert_close(loaded(z, labels), model(z, labels))
    assert "torch.arange(16) % 10" in (tmp_path / "model" / "README.md").read_text()


def test_onnx_export_takes_labels(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    from transgan.artifacts.onnx_export import export_onnx

    assert export_onnx(_build("CNN-G", 3), tmp_path / "g.onnx") <= 1e-4


# ---------------------------------------------------------------- data labels


def test_digits_carry_their_targets() -> None:
    from sklearn.datasets import load_digits

    data = build_dataset("digits", 8, 1)
    assert data.labels == load_digits().target.tolist()
    assert data.num_classes == 10 and data.class_names == [str(d) for d in range(10)]
    assert data.label_tensor([0, 5, 1796]).tolist() == [0, 5, 8]
    plain = [data[i] for i in range(4)]
    paired = [data.labelled()[i] for i in range(4)]
    for i, (image, label) in enumerate(paired):
        assert torch.equal(image, plain[i]) and label.item() == data.labels[i]


def _write_images(folder: Path, count: int, value: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        Image.fromarray(np.full((6, 6, 3), value, dtype=np.uint8)).save(folder / f"{i}.png")


def test_folder_subfolders_are_classes(tmp_path: Path) -> None:
    _write_images(tmp_path / "zebra", 2, 250)
    _write_images(tmp_path / "ant", 3, 10)
    (tmp_path / ".cache").mkdir()
    data = build_dataset(f"folder:{tmp_path}", 4, 1)
    assert data.class_names == ["ant", "zebra"] and data.num_classes == 2
    assert data.labels == [0, 0, 0, 1, 1]
    loader = torch.utils.data.DataLoader(data.labelled(), batch_size=5)
    images, labels = next(iter(loader))
    # The ant images are dark, the zebra ones bright: each label sits beside its image.
    assert torch.equal(labels, torch.tensor([0, 0, 0, 1, 1]))
    assert torch.equal(images.mean(dim=(1, 2, 3)) > 0, labels == 1)


def test_folder_without_classes_is_unlabelled(tmp_path: Path) -> None:
    _write_images(tmp_path / "cats", 2, 100)
    _write_images(tmp_path, 1, 100)
    data = build_dataset(f"folder:{tmp_path}", 4, 3)
    assert data.labels is None and data.num_classes == 0 and len(data) == 3
    with pytest.raises(DataError, match="0.png is not in a class subfolder"):
        data.labelled()


def test_empty_class_folder_is_an_error_when_labels_are_asked_for(tmp_path: Path) -> None:
    _write_images(tmp_path / "full", 2, 100)
    (tmp_path / "empty").mkdir()
    data = build_dataset(f"folder:{tmp_path}", 4, 3)
    assert len(data) == 2
    with pytest.raises(DataError) as info:
        data.label_tensor([0])
    assert "class folder 'empty' has no readable images" in str(info.value)
    assert "\n" not in str(info.value)
