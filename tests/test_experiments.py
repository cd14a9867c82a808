"""Experiments as commands: runs per arm x seed, skipping finished work, reports and plots."""

from __future__ import annotations

import os
import shutil
import signal
import threading
import time
from pathlib import Path

import pytest
import torch

from transgan.cli import main
from transgan.errors import ExperimentFailed, ExperimentStopped
from transgan.experiments import experiment_arms, run_experiment, run_options, scaled_width
from transgan.models import generator_config
from transgan.train import training
from transgan.train.options import OPTION_NAMES
from transgan.train.state import RunLock

TINY = {
    "generator": {"width": 32, "depths": [1, 1], "latent_dim": 16},
    "discriminator": {"width": 32, "depth": 1, "patch": 4},
    "batch": 16, "n_critic": 1, "eval_num": 200, "num_samples": 16,
}


@pytest.fixture(scope="module")
def gd_combos(tmp_path_factory: pytest.TempPathFactory, session_cache: Path) -> Path:
    """gd-combos on digits with tiny models, 64 images, one seed."""
    from transgan.metrics.digits import load_digits_classifier

    mp = pytest.MonkeyPatch()
    mp.setenv("TRANSGAN_CACHE", str(session_cache))
    load_digits_classifier(session_cache)
    out = tmp_path_factory.mktemp("gd-combos")
    try:
        run_experiment("gd-combos", "digits", 64, 1, out, dict(TINY))
    finally:
        mp.undo()
    return out


def test_experiment_writes_runs_table_and_plots(gd_combos: Path) -> None:
    for arm in ("transG-transD", "transG-cnnD", "cnnG-transD", "cnnG-cnnD"):
        run = gd_combos / arm / "seed0"
        assert (run / "checkpoints" / "latest.pt").exists()
        assert (run / "metrics.jsonl").read_text().count("\n") == 4  # every budget / 4
    report = (gd_combos / "report.md").read_text()
    assert "| arm | digits-fid ↓ | digits-is ↑ |" in report
    assert "CNN G + Transformer D" in report and "N = 200 samples" in report
    assert "paper" not in report  # published numbers are CIFAR-10 only
    assert "| arm | seed | digits-fid | digits-is | images seen | wall time |" in report
    assert "| CNN G + Transformer D | 0 | " in report  # each run's own figures
    for png in ("metric_vs_images.png", "samples.png"):
        assert (gd_combos / png).read_bytes()[:4] == b"\x89PNG"


def test_rerun_does_no_finished_work(gd_combos: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_training(self: training.Trainer) -> Path:
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(training.Trainer, "run", no_training)
    latest = gd_combos / "cnnG-cnnD" / "seed0" / "checkpoints" / "latest.pt"
    before = latest.stat().st_mtime_ns
    run_experiment("gd-combos", "digits", 64, 1, gd_combos, dict(TINY))
    assert latest.stat().st_mtime_ns == before


def test_unfinished_run_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    original = training.Trainer.run

    def counted(self: training.Trainer) -> Path:
        calls.append(self.built.counters.images)
        return original(self)

    monkeypatch.setattr(training.Trainer, "run", counted)
    options = {**TINY, "eval_every": 0}
    first = experiment_arms("tricks", "digits")[0].name
    run_experiment("tricks", "digits", 32, 1, tmp_path, {**options}, only=[first])
    assert calls == [0] and [p.name for p in tmp_path.iterdir() if p.is_dir()] == [first]
    run_experiment("tricks", "digits", 32, 1, tmp_path, {**options})
    assert calls == [0, 0, 0, 0]  # the first arm's run was finished
    run_experiment("tricks", "digits", 48, 1, tmp_path, {**options})
    assert calls[4:] == [32, 32, 32, 32]  # each resumed at its checkpoint
    assert "+ locality-aware init" in (tmp_path / "report.md").read_text()


def test_report_of_a_run_from_stats_alone(gd_combos: Path, tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(gd_combos / "transG-transD" / "seed0" / "stats.jsonl", run / "stats.jsonl")
    assert main(["report", str(run)]) == 0
    assert (run / "report" / "losses.png").exists()
    page = (run / "report" / "report.html").read_text()
    assert "data:image/png;base64," in page and "images seen" in page
    assert "report.html" in capsys.readouterr().out


def test_report_of_a_full_run_has_metrics_and_samples(gd_combos: Path) -> None:
    assert main(["report", str(gd_combos / "cnnG-transD" / "seed0")]) == 0
    folder = gd_combos / "cnnG-transD" / "seed0" / "report"
    assert {"losses.png", "metrics.png", "samples.png", "report.html"} <= {
        p.name for p in folder.iterdir()}
    assert main(["report", str(gd_combos)]) == 0


@pytest.mark.parametrize("argv, message", [
    (["experiment", "nope", "--budget", "64"], "unknown experiment 'nope'"),
    (["experiment", "tricks", "--budget", "0"], "--budget must be positive"),
    (["experiment", "sizes", "--budget", "64", "--width-scale", "0"], "--width-scale"),
    (["experiment", "tricks", "--budget", "64", "--jobs", "0"], "--jobs must be at least 1"),
    (["experiment", "objectives", "--budget", "64", "--arms", "rpgan-cnn,nope"],
     "objectives has no arm nope; its arms are wgangp-transformer,"),
    (["report", "."], "neither an experiment"),
])
def test_bad_input_is_a_one_line_error(argv: list[str], message: str, capsys) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1


def test_sizes_arms_are_valid_configs() -> None:
    for data, scale in (("digits", 0.125), ("digits", 1.0), ("cifar10", 0.25), ("cifar10", 1.0)):
        arms = experiment_arms("sizes", data, scale)
        assert [a.name for a in arms] == ["S", "M", "L", "XL"]
        for arm in arms:
            cfg = generator_config(arm.updates["preset"], **arm.updates["generator"])
            assert cfg.depths[1] == (4 if arm.name == "XL" else 2)
    assert scaled_width(384, 0.125, 2) == 48 and scaled_width(1024, 0.01, 3) == 64


def test_paper_numbers_for_cifar(tmp_path: Path) -> None:
    import json

    from transgan.report import report_experiment

    arms = [{"name": a.name, "label": a.label, "updates": a.updates}
            for a in experiment_arms("tricks", "cifar10")]
    (tmp_path / "experiment.json").write_text(json.dumps(
        {"experiment": "tricks", "data": "cifar10", "budget": 10, "seeds": 1, "arms": arms}))
    report = report_experiment(tmp_path).read_text()
    assert "19.85 (paper)" in report and "8.22 (paper)" in report


def test_experiment_report_follows_each_arm_through_training(tmp_path: Path) -> None:
    import json

    from transgan.report import COURSE_ROWS, report_experiment

    arms = [{"name": "a", "label": "arm A", "updates": {}},
            {"name": "b", "label": "arm B", "updates": {}}]
    (tmp_path / "experiment.json").write_text(json.dumps(
        {"experiment": "objectives", "data": "digits", "budget": 30, "seeds": 2, "arms": arms}))
    fids = {("a", 0): [9.0, 5.0, 3.0], ("a", 1): [7.0, 4.0, 2.0], ("b", 0): [8.0, 6.0, 6.5]}
    for (arm, seed), values in fids.items():
        run = tmp_path / arm / f"seed{seed}"
        run.mkdir(parents=True)
        (run / "metrics.jsonl").write_text("".join(
            json.dumps({"images": 10 * (i + 1), "digits-fid": v}) + "\n"
            for i, v in enumerate(values)))
    # D's R1 as logged, averaged over each stretch between evaluations; arm B logs none.
    r1s = {0: [(5, 1.0), (10, 3.0), (25, 4.0)], 1: [(10, 2.0), (20, 6.0), (30, 8.0)]}
    for seed, logged in r1s.items():
        (tmp_path / "a" / f"seed{seed}" / "stats.jsonl").write_text("".join(
            json.dumps({"images": images, "r1": r1, "img_per_s": 10.0 * (seed + 1)}) + "\n"
            for images, r1 in logged))
    lines = report_experiment(tmp_path).read_text().splitlines()
    start = lines.index("| images seen | arm A | arm B |")
    assert lines[start + 2:start + 5] == [
        "| 10 | 8.000 ± 1.414 (2) | 8.000 (1) |",
        "| 20 | 4.500 ± 0.707 (2) | 6.000 (1) |",
        "| 30 | 2.500 ± 0.707 (2) | 6.500 (1) |"]
    start = next(i for i, line in enumerate(lines) if line.startswith("D's r1 during"))
    assert lines[start + 4:start + 7] == [
        "| 10 | 2.000 ± 0.000 (2) |  |",
        "| 20 | 6.000 (1) |  |",
        "| 30 | 6.000 ± 2.828 (2) |  |"]
    assert next(line for line in lines if line.startswith("| arm A |")).endswith("| 15.0 |")
    assert next(line for line in lines if line.startswith("| arm B |")).endswith("| n/a |")
    # A long run lists COURSE_ROWS evenly spread evaluations, the first and the last among them.
    (tmp_path / "b" / "seed0" / "metrics.jsonl").write_text("".join(
        json.dumps({"images": 10 * (i + 1), "digits-fid": 1.0}) + "\n" for i in range(100)))
    lines = report_experiment(tmp_path).read_text().splitlines()
    start = lines.index("| images seen | arm A | arm B |")
    rows = lines[start + 2:lines.index("", start)]
    assert len(rows) == COURSE_ROWS
    assert rows[0].startswith("| 10 |") and rows[-1] == "| 1,000 |  | 1.000 (1) |"


def test_augment_arms_differ_only_in_the_augmentation_probability(tmp_path: Path) -> None:
    arms = experiment_arms("augment", "digits")
    opts = {arm.name: run_options(arm, "digits", 20_000, 0, tmp_path / arm.name, {})
            for arm in arms}
    assert (opts["fixed"].augmentation.augment_p,
            opts["adaptive"].augmentation.augment_p) == (None, "adaptive")
    differing = {f for f in OPTION_NAMES
                 if opts["fixed"].value(f) != opts["adaptive"].value(f)}
    assert differing == {"augment_p", "out"}
    # The digits recipe's: p can reach 1 early.
    assert opts["adaptive"].augmentation.ada_speed == 20_000


def test_objectives_arms_change_only_the_objective_per_pair(tmp_path: Path) -> None:
    arms = {arm.name: arm for arm in experiment_arms("objectives", "digits")}
    assert list(arms) == ["wgangp-transformer", "rpgan-transformer", "rpgan-fd-transformer",
                          "wgangp-cnn", "rpgan-cnn", "rpgan-fd-cnn"]
    for pair, preset in (("transformer", "digits-vit"), ("cnn", "digits-cnn")):
        wgan, rpgan, fd = (run_options(arms[f"{loss}-{pair}"], "digits", 60_000, 0,
                                       tmp_path / loss, {}) for loss in ("wgangp", "rpgan",
                                                                         "rpgan-fd"))
        # The finite-difference arm is the exact arm but for how the penalty is taken.
        assert {f for f in OPTION_NAMES if fd.value(f) != rpgan.value(f)} == {
            "out", "penalty"}
        assert fd.objective.penalty == "finite-difference"
        assert wgan.preset == rpgan.preset == preset
        assert (wgan.objective.loss, rpgan.objective.loss) == ("wgangp-eps", "rpgan")
        differing = {f for f in OPTION_NAMES if wgan.value(f) != rpgan.value(f)}
        assert differing == {"out", "loss", "r1_gamma", "r2_gamma", "lr_schedule",
                             "beta2_schedule", "gamma_schedule", "augment_p_schedule",
                             "augment_p"}
    # The official arms are the G/D-combination runs of the same pairs, option for option.
    combos = {arm.name: arm for arm in experiment_arms("gd-combos", "digits")}
    assert arms["wgangp-transformer"].updates == combos["transG-transD"].updates
    assert arms["wgangp-cnn"].updates == combos["cnnG-cnnD"].updates


TRICKS_ARMS = ("baseline", "diffaug", "mtct", "locality")


def test_a_signal_stops_the_experiment_not_just_its_current_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    original = training.Trainer.apply_locality

    def signalled(self: training.Trainer) -> None:
        self._handle_signal(signal.SIGINT, None)  # as Ctrl-C during the first cycle
        original(self)

    monkeypatch.setattr(training.Trainer, "apply_locality", signalled)
    argv = ["experiment", "tricks", "--budget", "100000", "--out", str(tmp_path)]
    assert main(argv) == 130
    assert capsys.readouterr().err.endswith("Run the same command again to resume\n")
    assert (tmp_path / "baseline" / "seed0" / "checkpoints" / "latest.pt").exists()
    assert not (tmp_path / "diffaug").exists()  # the next run never started


def _g_ema(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "checkpoints" / "latest.pt", weights_only=False)["G_ema"]


def test_parallel_jobs_train_the_same_runs_as_one_after_another(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, session_cache: Path) -> None:
    monkeypatch.setenv("TRANSGAN_CACHE", str(session_cache))
    options = {**TINY, "eval_every": 0}
    threads = torch.get_num_threads()
    said: list[str] = []
    try:
        torch.set_num_threads(2)  # two jobs: one thread each, as the sequential runs below
        run_experiment("tricks", "digits", 32, 1, tmp_path / "parallel", dict(options),
                       progress=said.append, jobs=2)
        torch.set_num_threads(1)
        run_experiment("tricks", "digits", 32, 1, tmp_path / "sequential", dict(options))
    finally:
        torch.set_num_threads(threads)
    assert said[0] == "training 4 runs, 2 at a time, 1 CPU thread(s) each"
    assert "[4/4] tricks locality seed 0: training from 0 of 32 images" in said
    assert (tmp_path / "parallel" / "report.md").exists()
    for arm in TRICKS_ARMS:
        parallel = _g_ema(tmp_path / "parallel" / arm / "seed0")
        sequential = _g_ema(tmp_path / "sequential" / arm / "seed0")
        assert all(torch.equal(parallel[k], sequential[k]) for k in sequential), arm


def test_a_signal_stops_every_parallel_run_at_a_checkpoint(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, session_cache: Path) -> None:
    monkeypatch.setenv("TRANSGAN_CACHE", str(session_cache))
    logs = [tmp_path / arm / "seed0" / "log.txt" for arm in TRICKS_ARMS[:2]]

    def interrupt_once_both_train() -> None:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not all(
                log.exists() and "training digits" in log.read_text() for log in logs):
            time.sleep(0.2)
        time.sleep(1.0)
        os.kill(os.getpid(), signal.SIGTERM)  # to the parent only: it passes the stop on

    killer = threading.Thread(target=interrupt_once_both_train)
    killer.start()
    try:
        with pytest.raises(ExperimentStopped):
            run_experiment("tricks", "digits", 10_000_000, 1, tmp_path,
                           {**TINY, "eval_every": 0}, jobs=2)
    finally:
        killer.join()
    for log in logs:
        assert "stopped by signal" in log.read_text()
        assert (log.parent / "checkpoints" / "latest.pt").exists()
    assert not (tmp_path / "mtct").exists()


def test_a_failing_parallel_run_is_a_one_line_failure(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, session_cache: Path) -> None:
    monkeypatch.setenv("TRANSGAN_CACHE", str(session_cache))
    busy = tmp_path / "diffaug" / "seed0"
    busy.mkdir(parents=True)
    lock = RunLock(busy)
    lock.acquire()  # as another training of the same run
    try:
        with pytest.raises(ExperimentFailed, match=r"^\[2/4\] tricks diffaug seed 0 failed: "
                           r"RunDirectoryBusy: .* the other runs stopped"):
            run_experiment("tricks", "digits", 32, 1, tmp_path, {**TINY, "eval_every": 0},
                           jobs=2)
    finally:
        lock.release()


def test_discriminator_arms_change_only_the_discriminator_or_its_penalty(tmp_path: Path) -> None:
    from transgan.models import discriminator_config, discriminator_from_config

    arms = {arm.name: arm for arm in experiment_arms("discriminators", "digits")}
    options = {name: run_options(arm, "digits", 60_000, 0, tmp_path / name, {})
               for name, arm in arms.items()}
    base = options["vit"]
    assert base.objective.loss == "rpgan" and base.preset == "digits-vit"
    for name, opts in options.items():
        differing = {f for f in OPTION_NAMES if opts.value(f) != base.value(f)} - {"out"}
        if name == "cnn-d":
            assert differing == {"preset"} and opts.preset == "digits-cnn-d"
        elif "gamma" in name:
            assert differing <= {"discriminator", "r1_gamma", "r2_gamma", "gamma_schedule",
                                 "penalty"}
            gamma = float(name.split("gamma")[1])
            assert opts.objective.r1_gamma == opts.objective.r2_gamma == gamma
            assert opts.optim.gamma_schedule == "constant"
            assert (opts.objective.penalty == "finite-difference") == ("-fd-" in name)
            assert opts.discriminator == ({} if name.startswith("vit") else {"rope": True}
                                          | ({"norm": "rmsnorm"} if "rmsnorm" in name else {}))
        else:
            assert differing == ({"discriminator"} if name != "vit" else set())
        if name != "cnn-d":  # every arm's discriminator builds
            discriminator_from_config(discriminator_config(opts.preset, **opts.discriminator))
    assert set(options["combined"].discriminator) == {
        "norm", "layer_scale", "swiglu", "rope", "l2_attention", "spectral_norm",
        "overlap_embed"}
