"""End-to-end: train, resume, sample, interpolate and distributed runs through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from PIL import Image

from transgan.artifacts.checkpoint import load_checkpoint
from transgan.cli import main


def _train(args: list[str], out: Path, images: int, *extra: str) -> int:
    return main(["train", *args, "--out", str(out), "--images", str(images), *extra])


def test_train_leaves_a_complete_run_directory(tmp_path: Path, tiny_run_args: list[str]) -> None:
    run = tmp_path / "run"
    assert _train(tiny_run_args, run, 256) == 0
    assert (run / "checkpoints" / "latest.pt").is_file()
    assert sorted(p.name for p in (run / "checkpoints").glob("ckpt-*.pt")) == [
        "ckpt-000000000128.pt", "ckpt-000000000256.pt"]
    for name in ("reals.png", "fakes-latest.png", "fakes-000000k.png"):
        assert (run / "samples" / name).is_file(), name
    grid = Image.open(run / "samples" / "fakes-latest.png")
    assert grid.mode == "L" and grid.size == (4 * 66 + 2, 4 * 66 + 2)  # 16 px tiles shown at 64
    records = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert [r["images"] for r in records] == [64, 128, 192, 256]
    for record in records:
        assert all(isinstance(record[k], float) for k in ("loss_d", "loss_g", "gp", "img_per_s"))
    assert list((run / "tensorboard").glob("events.out.tfevents.*"))
    assert "done: 256 images" in (run / "log.txt").read_text()
    assert "batch: 16" in (run / "options.yaml").read_text()
    state = load_checkpoint(run / "checkpoints" / "latest.pt")
    assert state["counters"]["images"] == 256 and state["counters"]["g_steps"] == 8


def test_sample_and_interpolate(tmp_path: Path, tiny_run_args: list[str]) -> None:
    run = tmp_path / "run"
    assert _train(tiny_run_args, run, 64) == 0
    assert main(["sample", str(run), "--num", "5", "--out", str(tmp_path / "s")]) == 0
    files = sorted((tmp_path / "s").glob("*.png"))
    assert [f.name for f in files] == [f"{i:06d}.png" for i in range(5)]
    assert Image.open(files[0]).size == (16, 16)
    assert main(["sample", str(run / "checkpoints" / "latest.pt"), "--num", "9", "--grid",
                 "--out", str(tmp_path / "g.png")]) == 0
    assert Image.open(tmp_path / "g.png").size == (3 * 66 + 2, 3 * 66 + 2)
    assert main(["interpolate", str(run), "--rows", "2", "--steps", "4",
                 "--out", str(tmp_path / "walk.png")]) == 0
    assert Image.open(tmp_path / "walk.png").size == (4 * 66 + 2, 2 * 66 + 2)
    assert main(["interpolate", str(run), "--rows", "2", "--steps", "4",
                 "--out", str(tmp_path / "walk.gif")]) == 0
    gif = Image.open(tmp_path / "walk.gif")
    assert gif.n_frames == 2 * 4 - 2


def _weights(run: Path) -> dict[str, dict[str, torch.Tensor]]:
    state = load_checkpoint(run / "checkpoints" / "latest.pt")
    return {key: state[key] for key in ("G", "D", "G_ema")}


def _straight_and_resumed(args: list[str], tmp_path: Path) -> tuple[Path, Path]:
    """A 256-image run straight through and the same run resumed at 128, with equal weights."""
    straight, pieces = tmp_path / "straight", tmp_path / "pieces"
    assert _train(args, straight, 256) == 0
    assert _train(args, pieces, 128) == 0
    assert _train(args, pieces, 256) == 0
    a, b = _weights(straight), _weights(pieces)
    for model in a:
        for name, tensor in a[model].items():
            assert torch.equal(tensor, b[model][name]), f"{model}.{name}"
    return straight, pieces


def test_resume_continues_exactly(tmp_path: Path, tiny_run_args: list[str]) -> None:
    args = [*tiny_run_args, "--deterministic", "--mtct", "--mtct-until", "160",
            "--locality", "96:1,192:2", "--hflip"]
    straight, pieces = _straight_and_resumed(args, tmp_path)
    lines_a = (straight / "stats.jsonl").read_text().splitlines()
    lines_b = (pieces / "stats.jsonl").read_text().splitlines()
    assert [json.loads(x)["loss_d"] for x in lines_a] == [json.loads(x)["loss_d"] for x in lines_b]


def test_resume_continues_the_cosine_schedules_exactly(tmp_path: Path,
                                                       tiny_run_args: list[str]) -> None:
    args = [*tiny_run_args, "--deterministic", "--loss", "rpgan", "--lr-schedule", "cosine",
            "--beta2-schedule", "cosine", "--gamma-schedule", "cosine",
            "--augment-p-schedule", "cosine", "--augment-p", "0.5", "--schedule-images", "256"]
    _, pieces = _straight_and_resumed(args, tmp_path)
    records = [json.loads(x) for x in (pieces / "stats.jsonl").read_text().splitlines()]
    assert [r["beta2"] for r in records] == sorted(r["beta2"] for r in records)
    assert records[-1]["lr_g"] < records[0]["lr_g"] and "r2" in records[-1]
    state = load_checkpoint(pieces / "checkpoints" / "latest.pt")
    assert state["schedules"]["gamma_scale"] == pytest.approx(0.1)


def test_resume_with_the_finite_difference_penalty_is_exact(tmp_path: Path,
                                                           tiny_run_args: list[str]) -> None:
    # The twins' directions come from the saved random state, like DiffAugment's draws.
    args = [*tiny_run_args, "--deterministic", "--loss", "rpgan", "--penalty",
            "finite-difference", "--lazy-reg", "2"]
    _, pieces = _straight_and_resumed(args, tmp_path)
    records = [json.loads(x) for x in (pieces / "stats.jsonl").read_text().splitlines()]
    assert all("r1" in r and "r2" in r for r in records)


def test_rerun_of_finished_run_does_nothing(tmp_path: Path, tiny_run_args, capsys) -> None:
    run = tmp_path / "run"
    assert _train(tiny_run_args, run, 64) == 0
    before = (run / "checkpoints" / "latest.pt").stat().st_mtime_ns
    assert _train(tiny_run_args, run, 64) == 0
    assert "already finished" in capsys.readouterr().err
    assert (run / "checkpoints" / "latest.pt").stat().st_mtime_ns == before


def test_resume_refuses_changed_recipe(tmp_path: Path, tiny_run_args, capsys) -> None:
    run = tmp_path / "run"
    assert _train(tiny_run_args, run, 64) == 0
    assert _train(tiny_run_args, run, 128, "--loss", "hinge") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("transgan: error: --loss 'hinge' differs from the run")
    assert main(["train", "--out", str(tmp_path / "new"), "--resume"]) == 2
    assert "no checkpoint" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--preset", "nope"], "unknown preset 'nope'"),
        (["--loss", "wgan"], "unknown loss 'wgan'"),
        (["--augment", "flip"], "flip"),
        (["--batch", "15", "--accum", "2"], "not divisible"),
        (["--gen", "img_size=32"], "img_size 32 does not match"),
        (["--data", "folder:/does/not/exist"], "does not exist"),
        (["--locality", "abc"], "locality"),
        (["--device", "gpu"], "unknown device 'gpu'"),
        (["--lr-schedule", "step"], "unknown lr schedule 'step'"),
        (["--lr-schedule", "linear", "--lr-end-ratio", "-1"], "--lr-end-ratio must be >= 0"),
        (["--gamma-end-ratio", "-1"], "--gamma-end-ratio must be >= 0"),
        (["--schedule-images", "0"], "--schedule-images must be positive"),
        (["--augment-p-schedule", "cosine"], "give --augment-p FLOAT"),
        (["--penalty", "finite-difference"], "--penalty finite-difference stands for the "
                                             "zero-centred penalties"),
        (["--penalty", "numeric"], "unknown penalty 'numeric'"),
        (["--loss", "rpgan", "--penalty-sigma", "0"], "--penalty-sigma must be positive"),
    ],
)
def test_bad_options_are_one_line_errors(tmp_path, tiny_run_args, capsys, extra, message) -> None:
    assert _train(tiny_run_args, tmp_path / "run", 64, *extra) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("transgan: error:") and message in err[0], err


@pytest.mark.parametrize("command", [["sample", "run"], ["interpolate", "run"], ["eval", "run"],
                                     ["bench"], ["experiment", "tricks", "--budget", "64"]])
def test_every_command_checks_its_device_first(tmp_path: Path, capsys, monkeypatch,
                                               command) -> None:
    monkeypatch.chdir(tmp_path)  # nothing may be written; relative paths would land here
    assert main([*command, "--device", "tpu7"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["transgan: error: unknown device 'tpu7'; use auto, cpu, cuda or cuda:N"]
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["--mtct"], "--mtct needs a transformer"), (["--locality", "64:2"], "--locality needs")],
)
def test_tricks_need_a_transformer_generator(tmp_path, capsys, extra, message) -> None:
    args = ["train", "--preset", "digits-cnn", "--out", str(tmp_path / "r"), *extra]
    assert main(args) == 2
    assert message in capsys.readouterr().err


def test_yaml_config_and_overrides(tmp_path: Path, tiny_run_args: list[str]) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("loss: hinge\naugment: none\nn_critic: 1\n")
    run = tmp_path / "run"
    assert _train([*tiny_run_args, "--config", str(config)], run, 64, "--n-critic", "2") == 0
    options = load_checkpoint(run / "checkpoints" / "latest.pt")["options"]
    assert (options["loss"], options["augment"], options["n_critic"]) == ("hinge", "none", 2)
    assert options["generator"] == {"width": 32, "depths": [1, 1], "latent_dim": 16}


def test_periodic_evaluation_keeps_the_best_checkpoint(tmp_path: Path, tiny_run_args,
                                                       digits_cache) -> None:
    run = tmp_path / "run"
    assert _train(tiny_run_args, run, 128, "--eval-every", "64", "--eval-num", "200") == 0
    records = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["images"] for r in records] == [64, 128]
    for record in records:
        assert record["digits-fid"] > 0 and record["digits-is"] >= 1
        assert record["protocol"]["num_samples"] == 200
        assert record["protocol"]["reference"] == "digits-train"
    best = load_checkpoint(run / "checkpoints" / "best.pt")
    assert best["best"]["value"] == min(r["digits-fid"] for r in records)
    assert "eval at 64 images" in (run / "log.txt").read_text()


def test_eval_command_on_a_run(tmp_path: Path, tiny_run_args, digits_cache, capsys) -> None:
    run = tmp_path / "run"
    assert _train(tiny_run_args, run, 64) == 0
    assert main(["eval", str(run), "--num", "300", "--no-progress"]) == 0
    result = json.loads((run / "checkpoints" / "metrics-64.json").read_text())
    assert set(result["metrics"]) >= {"digits-fid", "digits-is"}
    assert result["protocol"]["num_samples"] == 300
    out = capsys.readouterr().out
    assert "digits-fid" in out
    assert main(["eval", str(run), "--metrics", "fid,nope"]) == 2


def test_bf16_autocast_training_on_cpu(tmp_path: Path, tiny_run_args: list[str]) -> None:
    run = tmp_path / "run"
    assert _train(tiny_run_args, run, 64, "--precision", "bf16") == 0
    record = json.loads((run / "stats.jsonl").read_text().splitlines()[-1])
    assert all(isinstance(record[k], float) for k in ("loss_d", "loss_g", "gp"))
    assert "cpu, bf16" in (run / "log.txt").read_text()
