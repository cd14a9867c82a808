"""Two processes (gloo, CPU) train as one process with the same global batch does, with the
default loss (WGAN-GP, drift) or logistic + R1 with the finite-difference penalty, and DiffAugment,
and a resumed two-process run is exact."""

from __future__ import annotations

import datetime
import os
from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from conftest import TINY_RUN, free_port

from transgan.artifacts.checkpoint import load_checkpoint
from transgan.cli import build_parser, main, train_options_from_args
from transgan.train.state import resolve_resume
from transgan.train.training import Trainer

RUN = [*TINY_RUN, "--deterministic", "--precision", "fp32"]


def _train(run: Path, images: int, extra: list[str]) -> None:
    args = build_parser().parse_args(["train", *RUN, *extra, "--out", str(run),
                                      "--images", str(images)])
    opts, explicit = train_options_from_args(args)
    opts, state = resolve_resume(opts, explicit, require=False)
    Trainer.from_options(opts, resume_state=state).run()


def _rank_main(rank: int, folder: str, port: int, extra: list[str]) -> None:
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2",
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), OMP_NUM_THREADS="1")
    torch.set_num_threads(1)
    dist.init_process_group("gloo", timeout=datetime.timedelta(seconds=120))
    try:
        _train(Path(folder, "straight"), 128, extra)
        _train(Path(folder, "pieces"), 64, extra)
        torch.manual_seed(rank + 99)  # the resumed run must take every rank's RNG as saved
        _train(Path(folder, "pieces"), 128, extra)
    finally:
        dist.destroy_process_group()


def _weights(run: Path) -> dict[str, dict[str, torch.Tensor]]:
    state = load_checkpoint(run / "checkpoints" / "latest.pt")
    return {key: state[key] for key in ("G", "D", "G_ema")}


@pytest.mark.parametrize("extra", [[], ["--loss", "logistic-r1", "--penalty", "finite-difference"]],
                         ids=["wgangp-eps", "r1-finite-difference"])
def test_two_processes_match_one_and_resume_exactly(tmp_path: Path, extra: list[str]) -> None:
    assert main(["train", *RUN, *extra, "--out", str(tmp_path / "one"), "--images", "128"]) == 0
    mp.spawn(_rank_main, args=(str(tmp_path), free_port(), extra), nprocs=2, join=True)
    one, straight = _weights(tmp_path / "one"), _weights(tmp_path / "straight")
    pieces = _weights(tmp_path / "pieces")
    for model in one:
        for name, tensor in one[model].items():
            torch.testing.assert_close(straight[model][name], tensor, rtol=1e-4, atol=1e-5,
                                       msg=f"{model}.{name}")
            assert torch.equal(pieces[model][name], straight[model][name]), f"{model}.{name}"
    stats = (tmp_path / "straight" / "stats.jsonl").read_text().splitlines()
    assert len(stats) == 2
