"""Training options: YAML, merging, validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from transgan.errors import OptionsError
from transgan.train.option_files import load_yaml, save_yaml
from transgan.train.options import OPTION_NAMES, TrainOptions, merge
from transgan.train.validation import parse_stages, validate


def test_defaults_are_valid() -> None:
    validate(TrainOptions())


def test_yaml_round_trip(tmp_path: Path) -> None:
    opts = merge(TrainOptions(), {"batch": 8, "generator": {"width": 64}}, "test")
    save_yaml(opts, tmp_path / "o.yaml")
    again = merge(TrainOptions(), load_yaml(tmp_path / "o.yaml"), "file")
    assert again == opts


def test_merge_coerces_and_rejects() -> None:
    opts = merge(TrainOptions(), {"lr_g": 1, "images": 1e5}, "t")
    assert opts.optim.lr_g == 1.0 and opts.images == 100_000 and isinstance(opts.images, int)
    with pytest.raises(OptionsError, match="unknown option 'colour'"):
        merge(TrainOptions(), {"colour": 1}, "t")
    with pytest.raises(OptionsError, match="'batch' must be int"):
        merge(TrainOptions(), {"batch": "8"}, "t")
    with pytest.raises(OptionsError, match="'hflip' must be bool"):
        merge(TrainOptions(), {"hflip": 1}, "t")
    assert merge(TrainOptions(), {"mtct_until": None}, "t").objective.mtct_until is None
    with pytest.raises(OptionsError, match="cannot be empty"):
        merge(TrainOptions(), {"batch": None}, "t")


@pytest.mark.parametrize("text", ["[1, 2]", "a: [", "just text"])
def test_bad_yaml_files(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(OptionsError):
        load_yaml(path)
    with pytest.raises(OptionsError, match="cannot read"):
        load_yaml(tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    ("changes", "world", "message"),
    [
        ({"batch": 30}, 4, "not divisible by 4 process"),
        ({"loss": "wgan"}, 1, "unknown loss"),
        ({"precision": "fp16"}, 1, "unknown precision"),
        ({"images": 0}, 1, "--images must be positive"),
        ({"beta2": 1.0}, 1, "betas"),
        ({"device": "tpu"}, 1, "unknown device"),
        ({"locality_stages": "x"}, 1, "--locality-stages"),
        ({"grad_clip": -1.0}, 1, "--grad-clip"),
        ({"checkpoint_minutes": -1.0}, 1, "--checkpoint-minutes must be >= 0"),
    ],
)
def test_validation_errors(changes: dict, world: int, message: str) -> None:
    with pytest.raises(OptionsError, match=message):
        validate(merge(TrainOptions(), changes, "t"), world)


def test_parse_stages() -> None:
    assert parse_stages("all") is None
    assert parse_stages("last") == [-1]
    assert parse_stages("0,-1") == [0, -1]


def test_auto_precision_follows_the_hardware(monkeypatch: pytest.MonkeyPatch) -> None:
    import torch

    from transgan.train import distributed

    cpu = torch.device("cpu")
    assert distributed.resolve_precision("fp32", cpu) == "fp32"
    assert distributed.resolve_precision("bf16", cpu) == "bf16"
    monkeypatch.setattr(distributed, "cpu_has_native_bf16", lambda: False)
    assert distributed.resolve_precision("auto", cpu) == "fp32"
    monkeypatch.setattr(distributed, "cpu_has_native_bf16", lambda: True)
    assert distributed.resolve_precision("auto", cpu) == "bf16"


@pytest.mark.parametrize(("argv", "message"), [
    (["--preset", "cnn", "--gen", "width=0"], "CNNGeneratorConfig.width must be >= 1"),
    (["--preset", "digits-vit", "--disc", "patch=3"], "not divisible by patch"),
    (["--preset", "digits-vit", "--gen", "width=1.5"], "bad generator option width=1.5"),
    (["--preset", "digits-vit", "--gen", "img_size=32"], "img_size 32 does not match"),
    (["--preset", "digits-vit", "--disc", "img_size=32", "--disc", "patch=8"],
     "discriminator expects 32 px"),
    (["--preset", "digits-cnn", "--locality", "1k:2"], "--locality needs a transformer"),
    (["--preset", "digits-cnn-g", "--mtct"], "--mtct needs a transformer generator"),
    (["--preset", "transgan-v2-celebahq256", "--mtct", "--data", "digits-test"],
     "without latent modulation"),
    (["--preset", "digits-vit", "--cuda-graphs"], "--cuda-graphs needs a CUDA device"),
])
def test_model_mistakes_are_one_line_errors_before_the_run_directory(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from transgan.cli import main

    run = tmp_path / "run"
    assert main(["train", *argv, "--out", str(run), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("transgan: error:") and message in err and err.count("\n") == 1
    assert not run.exists()


def test_version_is_printed(capsys: pytest.CaptureFixture[str]) -> None:
    from transgan import __version__
    from transgan.cli import main

    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out == f"transgan {__version__}\n"


def test_the_ada_and_loss_defaults_have_one_home() -> None:
    from transgan.train.ada import AdaSettings
    from transgan.train.losses import LogisticR1, WGANGPEps

    opts, ada, wgan, r1 = TrainOptions(), AdaSettings(), WGANGPEps(), LogisticR1()
    augmentation = opts.augmentation
    assert (augmentation.ada_target, augmentation.ada_interval, augmentation.ada_speed) == (
        ada.target, ada.interval, ada.speed) == (0.6, 4, 500_000)
    assert (opts.objective.gp_weight, opts.objective.drift_weight, opts.objective.r1_gamma) == (
        wgan.gp_weight, wgan.drift_weight, r1.r1_gamma) == (10.0, 1e-3, 10.0)


def test_the_seed_stride_is_one_named_constant() -> None:
    import transgan
    from transgan.train.seeds import SEED_STRIDE

    source = Path(transgan.__file__).parent
    holders = sorted(str(path.relative_to(source)) for path in source.rglob("*.py")
                     if str(SEED_STRIDE) in path.read_text())
    assert holders == ["train/seeds.py"]


def test_lr_decay_of_earlier_runs_reads_as_the_linear_schedule_to_zero() -> None:
    upgraded = merge(TrainOptions(), {"lr_decay": True}, "checkpoint")
    assert (upgraded.optim.lr_schedule, upgraded.optim.lr_end_ratio) == ("linear", 0.0)
    assert merge(TrainOptions(), {"lr_decay": False}, "checkpoint") == TrainOptions()
    assert "lr_decay" not in TrainOptions().to_dict()
    with pytest.raises(OptionsError, match="'lr_decay' must be bool"):
        merge(TrainOptions(), {"lr_decay": "yes"}, "t")


def test_each_option_has_one_group_and_one_flat_name() -> None:
    opts = merge(TrainOptions(), {"lr_g": 3e-4, "augment": "color", "out": "o", "seed": 5}, "t")
    assert (opts.optim.lr_g, opts.augmentation.augment, opts.outputs.out, opts.seed) == (
        3e-4, "color", "o", 5)
    flat = opts.to_dict()
    assert list(flat) == list(OPTION_NAMES) and len(set(OPTION_NAMES)) == len(OPTION_NAMES)
    assert merge(TrainOptions(), flat, "t") == opts
    assert opts.replace(lr_d=1e-3, device="cpu").value("lr_d") == 1e-3
    assert TrainOptions().value("lr_d") == 1e-4  # replace copies, the defaults stay
