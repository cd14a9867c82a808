"""``--launcher slurm`` against a real one-node Slurm (``scripts/slurm.sh start``; CI starts it):
an experiment submitted, finished and reported; a cancelled job resumed to the weights of an
uninterrupted run; a job past its time limit requeued until done; a 2-task training equal to
the 2-process one. Option mistakes and a missing ``sbatch`` are one-line errors before anything
is submitted (those tests need no Slurm)."""

from __future__ import annotations

import getpass
import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp
from conftest import TINY_RUN, free_port

from transgan.artifacts.checkpoint import load_checkpoint
from transgan.cli import main
from transgan.experiments import experiment_arms, run_experiment, run_options
from transgan.experiments.plan import Plan
from transgan.slurm.jobs import JOB_FILE, read_job, run_states, squeue_states, wait_for
from transgan.slurm.options import SlurmOptions, parse_time

TINY = {"generator": {"width": 32, "depths": [1, 1], "latent_dim": 16},
        "discriminator": {"width": 32, "depth": 1, "patch": 4},
        "batch": 16, "n_critic": 1, "eval_num": 200, "num_samples": 16, "deterministic": True,
        "precision": "fp32"}
ARMS = [arm.name for arm in experiment_arms("gd-combos", "digits", 1.0)][:2]
LABELS = [arm.label for arm in experiment_arms("gd-combos", "digits", 1.0)][:2]
WAIT_S = 300


def _slurm_up() -> bool:
    if shutil.which("sbatch") is None or shutil.which("sinfo") is None:
        return False
    done = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True,
                          check=False)
    return done.returncode == 0 and any(s in done.stdout for s in ("idle", "mixed", "alloc"))


needs_slurm = pytest.mark.skipif(not _slurm_up(),
                                 reason="needs a running Slurm (scripts/slurm.sh start)")


def _user_jobs() -> list[str]:
    done = subprocess.run(["squeue", "-h", "-u", getpass.getuser(), "-o", "%i"],
                          capture_output=True, text=True, check=False)
    return done.stdout.split()


@pytest.fixture(scope="module")
def slurm(digits_cache: Path) -> Iterator[None]:
    """Slurm for a module of tests; nothing of theirs is left in the queue afterwards."""
    yield
    jobs = _user_jobs()
    if jobs:
        subprocess.run(["scancel", *jobs], check=False)
    deadline = time.monotonic() + 60
    while _user_jobs() and time.monotonic() < deadline:
        time.sleep(1)
    assert not _user_jobs(), "jobs left running"


def _weights(run: Path) -> dict[str, torch.Tensor]:
    state = load_checkpoint(run / "checkpoints" / "latest.pt")
    return {f"{model}.{key}": value for model in ("G", "D", "G_ema")
            for key, value in state[model].items()}


def _plan(out: Path, budget: int, extra: dict) -> Plan:
    """The plan of the first arm's seed-0 run of an experiment in ``out``."""
    arm = experiment_arms("gd-combos", "digits", 1.0)[0]
    return Plan("[1/1]", arm.name, run_options(arm, "digits", budget, 0,
                                               out / arm.name / "seed0", extra))


def _reference(tmp_path: Path, budget: int, extra: dict) -> Path:
    """The same run trained here, uninterrupted, on one thread as the jobs are."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        run_experiment("gd-combos", "digits", budget, 1, tmp_path / "here", extra,
                       only=ARMS[:1])
    finally:
        torch.set_num_threads(threads)
    return tmp_path / "here" / ARMS[0] / "seed0"


@needs_slurm
def test_an_experiment_is_submitted_finished_and_reported(slurm: None, tmp_path: Path,
                                                          capsys) -> None:
    out = tmp_path / "exp"
    said: list[str] = []
    report = run_experiment("gd-combos", "digits", 64, 1, out, dict(TINY), progress=said.append,
                            only=ARMS, slurm=SlurmOptions(time_min=10), wait=True)
    assert report is not None and report.is_file()
    assert any(line.startswith("submitted 2 run(s) to Slurm") for line in said)
    jobs = [read_job(out / arm / "seed0") for arm in ARMS]
    assert all(job and job["job_id"] for job in jobs)
    rows = [line for line in report.read_text().splitlines() if line.startswith("| ")]
    assert all(any(row.startswith(f"| {label} | ") and " | 1 | 64 | " in row for row in rows)
               for label in LABELS)
    # Run again: nothing is submitted and the report is written again.
    said.clear()
    assert run_experiment("gd-combos", "digits", 64, 1, out, dict(TINY), progress=said.append,
                          only=ARMS, slurm=SlurmOptions(time_min=10), wait=True) == report
    assert not any("submitted" in line for line in said)
    assert main(["experiment", "gd-combos", "--budget", "64", "--out", str(out),
                 "--status"]) == 0
    lines = capsys.readouterr().out.splitlines()
    done = [line for line in lines if " done " in line]
    assert len(done) == 2 and all("64 of 64 images  job " in line for line in done)
    assert sum(" not submitted " in line for line in lines) == 2  # the other two arms


@needs_slurm
def test_a_cancelled_job_resumes_to_the_weights_of_an_uninterrupted_run(
        slurm: None, tmp_path: Path) -> None:
    budget, extra = 4096, {**TINY, "eval_num": 100}
    out = tmp_path / "exp"
    run = out / ARMS[0] / "seed0"
    options = SlurmOptions(time_min=10)
    run_experiment("gd-combos", "digits", budget, 1, out, extra, only=ARMS[:1], slurm=options)
    job = read_job(run)["job_id"]  # type: ignore[index]
    said: list[str] = []  # queued or running: not submitted again
    assert run_experiment("gd-combos", "digits", budget, 1, out, extra, only=ARMS[:1],
                          slurm=options, progress=said.append) is None
    assert not any("submitted" in line for line in said)
    assert read_job(run)["job_id"] == job  # type: ignore[index]
    deadline = time.monotonic() + WAIT_S
    while not (run / "checkpoints" / "ckpt-000000001024.pt").exists():
        assert time.monotonic() < deadline, "no checkpoint came"
        time.sleep(0.5)
    subprocess.run(["scancel", job], check=True)
    wait_for([job], lambda _text: None)
    stopped = load_checkpoint(run / "checkpoints" / "latest.pt")["counters"]["images"]
    assert 1024 <= stopped < budget
    (state,) = run_states([_plan(out, budget, extra)], budget)
    assert state.state == "stopped" and "stopped by signal 15" in state.detail
    assert state.images == stopped and state.job_id == job
    report = run_experiment("gd-combos", "digits", budget, 1, out, extra, only=ARMS[:1],
                            slurm=options, wait=True)
    assert report is not None and read_job(run)["job_id"] != job  # type: ignore[index]
    assert f"resumed at {stopped:,} images" in (run / "log.txt").read_text()
    here = _weights(_reference(tmp_path, budget, extra))
    for name, tensor in _weights(run).items():
        assert torch.equal(tensor, here[name]), name


@needs_slurm
def test_a_job_past_its_time_limit_is_requeued_and_finishes(slurm: None, tmp_path: Path) -> None:
    # Two minutes: Slurm signals the job 30-60 s after it starts (it looks every 30 s), long
    # before the run is done and long after Python has started.
    out = tmp_path / "exp"
    run = out / ARMS[0] / "seed0"
    extra = {**TINY, "eval_num": 100, "log_every": 1024}
    options = SlurmOptions(time_min=2)
    budget = 24576
    run_experiment("gd-combos", "digits", budget, 1, out, extra, only=ARMS[:1], slurm=options)
    job = read_job(run)["job_id"]  # type: ignore[index]
    deadline = time.monotonic() + WAIT_S
    while state := squeue_states([job]).get(job):
        assert time.monotonic() < deadline, f"job {job} still {state}"
        if state.startswith("PENDING"):
            # Slurm holds a requeued job for about two minutes before it may start again;
            # the test lets it start at once.
            subprocess.run(["scontrol", "update", f"JobId={job}", "StartTime=now"],
                           capture_output=True, check=False)
        time.sleep(1)
    assert load_checkpoint(run / "checkpoints" / "latest.pt")["counters"]["images"] == budget
    logs = Path(read_job(run)["out"]).read_text()  # type: ignore[index]
    assert "before the time limit; requeued" in logs and "resuming at" in logs
    assert read_job(run)["job_id"] == job  # the same job, requeued, not a new one
    assert run_experiment("gd-combos", "digits", budget, 1, out, extra, only=ARMS[:1],
                          slurm=options) is not None  # done: the report, nothing submitted


def _torchrun_rank(rank: int, folder: str, port: int) -> None:
    import os

    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2",
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), OMP_NUM_THREADS="1")
    torch.set_num_threads(1)
    assert main(["train", *TINY_RUN, "--deterministic", "--precision", "fp32", "--device",
                 "cpu", "--out", folder, "--images", "128"]) == 0


@needs_slurm
def test_a_two_task_job_trains_as_two_processes_do(slurm: None, tmp_path: Path,
                                                   capsys) -> None:
    args = ["train", *TINY_RUN, "--deterministic", "--precision", "fp32", "--device", "cpu",
            "--images", "128"]
    assert main([*args, "--out", str(tmp_path / "slurm"), "--launcher", "slurm",
                 "--tasks-per-node", "2", "--time", "10", "--wait"]) == 0
    said = capsys.readouterr().out
    assert "1 node(s) x 2 process(es)" in said and "128 of 128 images" in said
    mp.spawn(_torchrun_rank, args=(str(tmp_path / "torchrun"), free_port()), nprocs=2,
             join=True)
    here = _weights(tmp_path / "torchrun")
    for name, tensor in _weights(tmp_path / "slurm").items():
        torch.testing.assert_close(tensor, here[name], rtol=1e-5, atol=1e-6, msg=name)
    job = json.loads((tmp_path / "slurm" / JOB_FILE).read_text())
    assert (tmp_path / "slurm" / "slurm" / job["job_id"]).is_dir()


@pytest.mark.parametrize(("extra", "message"), [
    (["--time", "0"], "--time must be at least 1, got 0"),
    (["--time", "1:xx"], "--time: expected minutes, H:MM:SS or D-HH:MM:SS, got '1:xx'"),
    (["--nodes", "0", "--cpus-per-task", "0"],
     "--nodes must be at least 1, got 0; --cpus-per-task must be at least 1, got 0"),
    (["--gpus-per-node", "2", "--tasks-per-node", "3"], "each process trains on one GPU"),
    (["--slurm-option", "account"], "--slurm-option takes NAME=VALUE"),
    (["--slurm-option", "qos", "--time", "x", "--nodes", "0"],
     "--slurm-option takes NAME=VALUE (an #SBATCH option), got 'qos'; --time: expected "
     "minutes, H:MM:SS or D-HH:MM:SS, got 'x'; --nodes must be at least 1, got 0"),
])
def test_bad_slurm_options_are_one_line_before_anything_is_submitted(
        tmp_path: Path, extra: list[str], message: str, capsys) -> None:
    out = tmp_path / "run"
    assert main(["train", *TINY_RUN, "--out", str(out), "--launcher", "slurm", *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("transgan: error:") and message in err and len(err.splitlines()) == 1
    assert not out.exists()


def test_a_missing_sbatch_is_one_line(tmp_path: Path, monkeypatch, capsys) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    out = tmp_path / "exp"
    assert main(["experiment", "gd-combos", "--budget", "64", "--out", str(out),
                 "--launcher", "slurm"]) == 2
    err = capsys.readouterr().err.strip()
    assert "Slurm's sbatch and squeue, which are not on PATH" in err
    assert len(err.splitlines()) == 1 and not out.exists()


def test_time_limits_read_as_slurm_writes_them() -> None:
    forms = ("90", "90:30", "1:30:00", "2-00:00:00", "0:00:30", "1-12", "1-2:30")
    assert [parse_time(t) for t in forms] == [90, 91, 90, 2880, 1, 2160, 1590]
    for bad in ("", "1:2:3:4", "-5", "x", "1-x"):
        with pytest.raises(ValueError, match="--time: expected"):
            parse_time(bad)
    assert SlurmOptions(time_min=1).parameters()["signal_delay_s"] == 30
    assert SlurmOptions(gpus_per_node=4).tasks == 4
    assert SlurmOptions().time_min == 240 and SlurmOptions(time_min=300).parameters()[
        "signal_delay_s"] == 120


@needs_slurm
def test_a_failed_job_is_one_line_with_the_last_line_of_its_log(slurm: None, tmp_path: Path,
                                                                capsys) -> None:
    # The data are only read in the job: it fails there, and the command says so.
    out = tmp_path / "exp"
    missing = tmp_path / "no-such-pictures"
    assert main(["experiment", "gd-combos", "--budget", "64", "--data", f"folder:{missing}",
                 "--arms", ARMS[0], "--out", str(out), "--launcher", "slurm", "--time", "10",
                 "--wait"]) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("transgan: 1 of 1 runs did not finish (gd-combos transG-transD seed 0: "
                          "failed, ") and "no-such-pictures" in err
    assert main(["experiment", "gd-combos", "--budget", "64", "--data", f"folder:{missing}",
                 "--out", str(out), "--status"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if ARMS[0] in x)
    assert " failed " in line and "no-such-pictures" in line
