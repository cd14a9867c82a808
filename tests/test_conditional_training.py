"""Class-conditional training and adaptive augmentation in the training step and the loop."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import TINY_RUN, tiny_step
from PIL import Image

from transgan.artifacts.checkpoint import load_checkpoint
from transgan.cli import main

TILE = 64 + 2  # 16 px samples are enlarged to 64 px tiles with 2 px padding


def _train(args: list[str], out: Path, images: int, *extra: str) -> int:
    return main(["train", *args, "--out", str(out), "--images", str(images), *extra])


def test_d_fakes_take_the_real_classes_and_g_draws_uniform_classes(tmp_path: Path) -> None:
    step = tiny_step(conditional=True)
    seen: list[torch.Tensor] = []
    forward = step.G_fwd.forward
    step.G_fwd.forward = lambda z, labels=None: seen.append(labels) or forward(z, labels)
    real = torch.rand(16, 1, 16, 16) * 2 - 1
    labels = torch.arange(16) % 10
    step.d_step(real, labels)
    assert torch.equal(seen[-1], labels)
    step.g_step(real)
    drawn = seen[-1]
    assert drawn.shape == (16,) and not torch.equal(drawn, labels)
    assert int(drawn.min()) >= 0 and int(drawn.max()) < 10


def test_the_d_step_conditions_d_on_the_labels(tmp_path: Path) -> None:
    grads = []
    for labels in (torch.zeros(16, dtype=torch.long), torch.ones(16, dtype=torch.long)):
        step = tiny_step(conditional=True, augment="none", loss="hinge")
        step.d_step(torch.rand(16, 1, 16, 16) * 2 - 1, labels)
        grads.append(step.D.class_embed.weight.detach().clone())
    # Only the embedding rows of the classes present move.
    start = tiny_step(conditional=True).D.class_embed.weight
    assert not torch.equal(grads[0][0], start[0]) and torch.equal(grads[0][1], start[1])
    assert not torch.equal(grads[1][1], start[1]) and torch.equal(grads[1][0], start[0])


def test_conditional_run_resumes_exactly_with_adaptive_augmentation(tmp_path: Path) -> None:
    args = [*TINY_RUN, "--deterministic", "--conditional", "--augment-p", "adaptive",
            "--ada-interval", "1", "--ada-speed", "640"]
    straight, pieces = tmp_path / "straight", tmp_path / "pieces"
    assert _train(args, straight, 256) == 0
    assert _train(args, pieces, 128) == 0
    assert _train(args, pieces, 256) == 0
    a = load_checkpoint(straight / "checkpoints" / "latest.pt")
    b = load_checkpoint(pieces / "checkpoints" / "latest.pt")
    assert a["generator_config"]["num_classes"] == 10
    for model in ("G", "D", "G_ema"):
        for name, tensor in a[model].items():
            assert torch.equal(tensor, b[model][name]), f"{model}.{name}"
    for key, value in a["ada"].items():
        assert value == b["ada"][key] if key == "steps" else torch.equal(value, b["ada"][key])
    stats = [[json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
             for run in (straight, pieces)]
    assert all({"augment_p", "ada_rt", "d_real_sign"} <= set(s) for s in stats[0])
    assert [s["augment_p"] for s in stats[0]] == [s["augment_p"] for s in stats[1]]
    grid = Image.open(straight / "samples" / "fakes-latest.png")
    assert grid.size[1] == 10 * TILE + 2  # one row per class


def test_adaptive_p_follows_the_sign_of_the_real_logits(tmp_path: Path) -> None:
    step = tiny_step(augment_p="adaptive", ada_interval=1, ada_speed=160, ada_target=0.0)
    p = 0.0
    for seed in range(6):
        real = torch.rand(16, 1, 16, 16, generator=torch.Generator().manual_seed(seed)) * 2 - 1
        sign = float(step.d_step(real)["d_real_sign"])
        p = min(1.0, max(0.0, p + (1.0 if sign > 0 else -1.0 if sign < 0 else 0.0) * 0.1))
        assert float(step.ada.p) == pytest.approx(p, abs=1e-6)
        assert step.augment.p is step.ada.p


def test_augment_p_zero_leaves_d_inputs_unaugmented(tmp_path: Path) -> None:
    real = torch.rand(16, 1, 16, 16) * 2 - 1
    weights = []
    for extra in ({"augment_p": "0"}, {"augment": "none"}):
        torch.manual_seed(0)
        step = tiny_step(loss="hinge", **extra)
        step.d_step(real)
        weights.append(step.D.state_dict())
    for key, value in weights[0].items():
        assert torch.equal(value, weights[1][key]), key


@pytest.mark.parametrize(("extra", "message"), [
    (["--augment-p", "1.5"], "--augment-p must be 'adaptive' or a number in [0, 1]"),
    (["--augment-p", "often"], "--augment-p must be"),
    (["--augment-p", "adaptive", "--augment", "none"], "needs a DiffAugment policy"),
    (["--ada-target", "2"], "--ada-target must be in [0, 1]"),
])
def test_bad_augment_probability_is_one_line_error(tmp_path: Path, extra: list[str],
                                                   message: str, capsys) -> None:
    assert _train(TINY_RUN, tmp_path / "run", 64, *extra) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "run").exists()


def test_conditional_on_unlabelled_data_is_one_line_error(tmp_path: Path, capsys) -> None:
    images = tmp_path / "flat"
    images.mkdir()
    for i in range(20):
        Image.new("L", (16, 16), color=i * 10).save(images / f"{i}.png")
    code = _train(TINY_RUN, tmp_path / "run", 64, "--conditional", "--data", f"folder:{images}")
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("transgan: error:") and "label" in err[0], err
    assert not (tmp_path / "run").exists()


def test_mode_seeking_pairs_samples_of_one_class_and_logs_its_term(tmp_path: Path) -> None:
    step = tiny_step(conditional=True, mode_seeking=1.0, accum=2)
    seen: list[torch.Tensor] = []
    forward = step.G_fwd.forward
    step.G_fwd.forward = lambda z, labels=None: seen.append(labels) or forward(z, labels)
    stats = step.g_step(torch.rand(16, 1, 16, 16) * 2 - 1)
    assert len(seen) == 2  # one G pass per accumulation chunk
    for labels in seen:
        first, second = labels.chunk(2)
        assert torch.equal(first, second)
    assert float(stats["mode_seeking"]) > 0


def test_mode_seeking_needs_pairs_in_every_chunk(tmp_path: Path, capsys) -> None:
    assert _train(TINY_RUN, tmp_path / "run", 64, "--mode-seeking", "1", "--g-batch", "6",
                  "--accum", "2") == 2
    assert "--mode-seeking pairs G's samples" in capsys.readouterr().err


def test_a_plain_train_is_the_conditional_demo_and_its_grid_has_a_row_per_digit(
        tmp_path: Path) -> None:
    tiny = [arg for arg in TINY_RUN if arg not in ("--preset", "digits-vit")]
    run = tmp_path / "run"
    assert _train(tiny, run, 64) == 0
    saved = load_checkpoint(run / "checkpoints" / "latest.pt")
    assert saved["options"]["preset"] == "digits-conditional"
    assert saved["generator_config"]["num_classes"] == 10
    assert saved["discriminator_config"]["num_classes"] == 10
    assert (saved["options"]["augment"], saved["options"]["mode_seeking"]) == ("none", 0.25)
    assert main(["sample", str(run), "--num", "100", "--grid", "--out",
                 str(tmp_path / "grid.png")]) == 0
    assert Image.open(tmp_path / "grid.png").size == (10 * TILE + 2, 10 * TILE + 2)
