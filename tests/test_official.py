"""Official TransGAN checkpoints: conversion, outputs equal to the official code's, errors.

The fixtures in fixtures/official-transgan/ were saved in the official checkpoint format with
random weights, next to the outputs the official model code computes for them (see their
README): equal outputs prove that the converted models are the official architectures.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
import torch

import transgan
from transgan.artifacts.official import convert_checkpoint, convert_generator
from transgan.cli import main
from transgan.errors import ConversionError
from transgan.train.schedules import LocalitySchedule

FIXTURES = Path(__file__).parent / "fixtures" / "official-transgan"
CASES = ("v1-small", "v2-small")


def _reference(case: str) -> dict:
    return torch.load(FIXTURES / f"{case}.reference.pt", weights_only=True)


def _official_window(epoch: int) -> int | None:
    """The official v1 window at a training epoch: our schedule with one image per epoch."""
    return LocalitySchedule.official("official", dataset_size=1).window_at(epoch)


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("converted")
    folders = {}
    for case in CASES:
        for weights in ("ema", "raw"):
            folder = out / f"{case}-{weights}"
            assert main(["convert", str(FIXTURES / f"{case}.pth"), "--out", str(folder),
                         "--weights", weights]) == 0
            folders[f"{case}-{weights}"] = folder
    return folders


def test_v1_ema_generator_equals_official_at_every_epoch(converted: dict[str, Path]) -> None:
    ref = _reference("v1-small")
    g = transgan.load_generator(converted["v1-small-ema"])
    epochs = sorted(int(k.removeprefix("g_ema_out_epoch")) for k in ref
                    if k.startswith("g_ema_out_epoch"))
    assert epochs == [0, 25, 35, 45, 100]
    with torch.no_grad():
        for epoch in epochs:
            g.set_locality(_official_window(epoch))  # official default: last block, last stage
            torch.testing.assert_close(g(ref["z"]), ref[f"g_ema_out_epoch{epoch}"],
                                       rtol=0, atol=1e-5)
        g.set_locality(None)  # the mask matters: without it epoch 0 differs
        assert (g(ref["z"]) - ref["g_ema_out_epoch0"]).abs().max() > 1e-3


@pytest.mark.parametrize("case", CASES)
def test_raw_generator_and_discriminator_equal_official(
    case: str, converted: dict[str, Path]
) -> None:
    ref = _reference(case)
    g = transgan.load_generator(converted[f"{case}-raw"])
    d = transgan.load_discriminator(converted[f"{case}-raw"])
    assert not g.training and not d.training
    with torch.no_grad():
        torch.testing.assert_close(g(ref["z"]), ref["g_out_epoch100"], rtol=0, atol=1e-5)
        # eval mode draws no D noise, as the reference was computed with zero draws
        torch.testing.assert_close(d(ref["x"]), ref["d_out"].flatten(), rtol=0, atol=1e-5)


def test_v2_ema_generator_and_noise(converted: dict[str, Path]) -> None:
    ref = _reference("v2-small")
    g = transgan.load_generator(converted["v2-small-ema"])
    d = transgan.load_discriminator(converted["v2-small-ema"])
    with torch.no_grad():
        torch.testing.assert_close(g(ref["z"]), ref["g_ema_out_epoch100"], rtol=0, atol=1e-5)
        strengths = [p for n, p in d.named_parameters() if n.endswith("noise_strength")]
        assert len(strengths) == 3 and all(p.shape == () and p != 0 for p in strengths)
        d.train()
        assert (d(ref["x"]) - ref["d_out"].flatten()).abs().max() > 1e-4


def test_inferred_configs_match_the_official_arguments() -> None:
    for case in CASES:
        args = _reference(case)["official_args"]
        result = convert_checkpoint(FIXTURES / f"{case}.pth")
        g, d = result.generator.config, result.discriminator.config
        assert (g.latent_dim, g.bottom, g.width, g.img_size) == (
            args["latent_dim"], args["bottom_width"], args["gf_dim"], args["img_size"])
        assert (d.width, d.patch, d.img_size, d.depth) == (
            args["df_dim"], args["patch_size"], args["img_size"], args["d_depth"])
        assert g.output_act == "none"
    v1 = convert_checkpoint(FIXTURES / "v1-small.pth")
    assert v1.generator.config.depths == (5, 4, 2) and v1.generator.version == "v1"
    assert [k for k in v1.generator.dropped if k.startswith("to_rgb.0.")] == v1.generator.dropped
    v2 = convert_checkpoint(FIXTURES / "v2-small.pth")
    assert v2.generator.config.depths == (2, 1, 1) and v2.generator.config.rel_pos_bias
    assert v2.discriminator.config.multiscale and v2.discriminator.config.noise
    assert all(k.endswith("relative_position_index") for k in v2.generator.dropped)


def test_commands_accept_a_converted_folder(converted: dict[str, Path], tmp_path: Path) -> None:
    folder = converted["v2-small-ema"]
    assert main(["sample", str(folder), "--num", "3", "--out", str(tmp_path / "s")]) == 0
    assert len(list((tmp_path / "s").glob("*.png"))) == 3
    assert main(["interpolate", str(folder), "--rows", "1", "--steps", "2",
                 "--out", str(tmp_path / "walk.png")]) == 0
    export = tmp_path / "g.safetensors"
    assert main(["export", str(folder), "--out", str(export)]) == 0
    z = torch.randn(2, 32)
    with torch.no_grad():
        torch.testing.assert_close(transgan.load_generator(export)(z),
                                   transgan.load_generator(folder)(z))
        # the official checkpoint itself loads too, converted in memory
        torch.testing.assert_close(transgan.load_generator(FIXTURES / "v2-small.pth")(z),
                                   transgan.load_generator(folder)(z))


def _convert_error(tmp_path: Path, path: Path, capsys: pytest.CaptureFixture[str]) -> str:
    assert main(["convert", str(path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("transgan: error: ")
    assert not (tmp_path / "out").exists()
    return err


def test_truncated_foreign_and_crafted_files_are_one_line_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    truncated = tmp_path / "truncated.pth"
    truncated.write_bytes((FIXTURES / "v1-small.pth").read_bytes()[:5000])
    assert "a truncated or damaged zip archive" in _convert_error(tmp_path, truncated, capsys)

    foreign = tmp_path / "foreign.pth"
    torch.save({"model": torch.nn.Linear(2, 2).state_dict()}, foreign)
    assert "not an official TransGAN checkpoint" in _convert_error(tmp_path, foreign, capsys)

    class Exploit:
        def __reduce__(self) -> tuple:
            return (print, ("code ran",))

    crafted = tmp_path / "crafted.pth"
    crafted.write_bytes(pickle.dumps({"gen_state_dict": Exploit()}))
    err = _convert_error(tmp_path, crafted, capsys)
    assert "refused to load" in err
    assert "code ran" not in capsys.readouterr().out


def test_unmapped_and_inconsistent_tensors_are_named() -> None:
    state = torch.load(FIXTURES / "v2-small.pth", weights_only=True)["avg_gen_state_dict"]
    extra = {**state, "module.blocks.block.0.attn.gamma": torch.zeros(3)}
    with pytest.raises(ConversionError, match="'blocks.block.0.attn.gamma'"):
        convert_generator(extra)
    key = "module.blocks.block.0.attn.relative_position_index"
    bad_index = {**state, key: state[key].flip(0)}
    with pytest.raises(ConversionError, match="differs from the recomputed"):
        convert_generator(bad_index)
    missing = {k: v for k, v in state.items() if "blocks.block.1.mlp.fc2.weight" not in k}
    with pytest.raises(ConversionError, match="stages.0.blocks.1.mlp.fc2.weight"):
        convert_generator(missing)


def test_overrides_for_what_the_tensors_do_not_show() -> None:
    result = convert_checkpoint(FIXTURES / "v1-small.pth", gen_overrides={"heads": 2})
    assert result.generator.config.heads == 2
    with pytest.raises(ConversionError, match="unknown generator option 'colour'"):
        convert_checkpoint(FIXTURES / "v1-small.pth", gen_overrides={"colour": 1})


# Parameter counts of the official model files built with each official script's arguments
# (G without v1's unused to_rgb BatchNorm, which its forward pass never calls).
OFFICIAL_COUNTS = {
    "transgan-s": (34_368_171, 12_458_497),
    "transgan-m": (49_860_835, 12_458_497),
    "transgan-l": (86_901_075, 12_458_497),
    "transgan-xl": (133_592_515, 12_458_497),
    "transgan-stl10": (150_061_395, 12_489_217),
    "transgan-celeba64": (132_925_171, 12_532_225),
    "transgan-v2-cifar10": (83_312_495, 10_210_400),
    "transgan-v2-stl10": (168_466_623, 10_341_536),
    "transgan-v2-church256": (205_291_952, 17_754_569),
    # Official G 212,903,275 less 20 cross-attention noise strengths its forward never uses.
    "transgan-v2-celebahq256": (212_903_275 - 20, 13_334_593),
}


@pytest.mark.parametrize("name", sorted(OFFICIAL_COUNTS))
def test_paper_presets_have_the_official_parameter_counts(name: str) -> None:
    g = transgan.build_generator(name)
    d = transgan.build_discriminator(name)
    mtct_input = sum(p.numel() for p in g.image_to_tokens.parameters())  # not in official G
    assert (transgan.count_parameters(g) - mtct_input,
            transgan.count_parameters(d)) == OFFICIAL_COUNTS[name]
    assert g.config.output_act == "none"


@pytest.mark.parametrize(("name", "policy", "rampup"), [
    ("transgan-v2-cifar10", "translation,cutout,color", 0.1),  # exps/cifar_train.py
    ("transgan-v2-stl10", "translation,stl_erase_ratio,color", 0.05),  # exps/stl_train.py
])
def test_v2_presets_use_the_official_scripts_augmentation(
    name: str, policy: str, rampup: float
) -> None:
    from transgan.train.recipes import options_for
    from transgan.train.validation import validate

    opts = options_for(name)
    validate(opts)
    augmentation, optim = opts.augmentation, opts.optim
    assert (augmentation.augment, augmentation.augment_params, opts.ema.ema_rampup) == (
        policy, "transgan", rampup)
    assert (opts.objective.loss, optim.lr_g, optim.lr_d, optim.beta1, optim.beta2) == (
        "wgangp-eps", 1e-4, 1e-4, 0.0, 0.99)


def test_official_locality_schedules_in_epochs() -> None:
    """Windows and epochs of the official v1 files: TransGAN_8_8_1 / G2_1 and Celeba64."""
    cifar = LocalitySchedule.official("official", dataset_size=1)
    assert [cifar.window_at(e) for e in (0, 21, 22, 31, 32, 41, 42, 59, 60)] == [
        4, 4, 6, 6, 8, 8, 10, 10, None]
    celeba = LocalitySchedule.official("official-celeba64", dataset_size=1)
    assert [celeba.window_at(e) for e in (0, 4, 5, 9, 10, 14, 15, 19, 20)] == [
        8, 8, 12, 12, 16, 16, 20, 20, None]
    assert transgan.get_preset("transgan-celeba64").recipe["locality"] == "official-celeba64"
    assert transgan.get_preset("transgan-xl").recipe["locality"] == "official"
    assert "locality" not in transgan.get_preset("transgan-v2-cifar10").recipe


def test_trainer_masks_only_the_last_block_of_the_last_stage_by_default(
    tmp_path: Path,
) -> None:
    from conftest import TINY_RUN

    from transgan.cli import build_parser, train_options_from_args
    from transgan.train.training import Trainer

    def masked(extra: list[str]) -> list[tuple[int, int]]:
        args = build_parser().parse_args(
            ["train", *TINY_RUN, "--gen", "depths=[2,2]", "--out", str(tmp_path / "r"),
             "--locality", "1M:3", *extra])
        trainer = Trainer.from_options(train_options_from_args(args)[0])
        assert trainer.locality_window == 3
        built = trainer.built
        return [(i, j) for g in (built.G, built.G_ema) for i, s in enumerate(g.stages)
                for j, b in enumerate(s.blocks) if b.attn.locality_mask is not None]

    assert masked([]) == [(1, 1)] * 2
    assert masked(["--locality-stages", "all", "--locality-blocks", "all"]) == [
        (0, 0), (0, 1), (1, 0), (1, 1)] * 2


def test_train_init_from_a_converted_folder(
    converted: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from transgan.cli import build_parser, train_options_from_args
    from transgan.train.training import Trainer

    folder = converted["v2-small-ema"]
    common = ["train", "--preset", "digits-vit", "--batch", "8", "--n-critic", "1",
              "--log-every", "16", "--sample-every", "16", "--checkpoint-every", "16",
              "--num-samples", "4", "--no-progress", "--precision", "fp32"]
    args = build_parser().parse_args(
        [*common, "--out", str(tmp_path / "ft"), "--init-from", str(folder), "--images", "16"])
    trainer = Trainer.from_options(train_options_from_args(args)[0])
    g_ref = transgan.load_generator(folder)
    d_ref = transgan.load_discriminator(folder)
    built = trainer.built
    for mine, ref in ((built.G, g_ref), (built.G_ema, g_ref), (built.D, d_ref)):
        for (name, a), b in zip(mine.state_dict().items(), ref.state_dict().values(),
                                strict=True):
            assert torch.equal(a.cpu(), b), name
    assert trainer.built.G.config == g_ref.config and trainer.built.dataset[0].shape == (3, 16, 16)
    trainer.run()
    assert main([*common, "--out", str(tmp_path / "ft"), "--init-from", str(folder),
                 "--images", "32"]) == 0  # the same command resumes the run
    state = torch.load(tmp_path / "ft" / "checkpoints" / "latest.pt", weights_only=True)
    assert state["counters"]["images"] == 32
    assert main([*common, "--out", str(tmp_path / "bad"), "--init-from",
                 str(tmp_path / "nowhere")]) == 2
    assert main([*common, "--out", str(tmp_path / "bad2"), "--init-from", str(folder),
                 "--gen", "width=128"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "does not exist" in err[-2] and "do not match" in err[-1]


def test_converted_files_name_the_preset_of_the_whole_pair() -> None:
    from transgan.artifacts.official.checkpoint import _matching_preset

    xl = transgan.get_preset("transgan-xl").architecture
    assert _matching_preset(xl.generator, xl.discriminator) == "transgan-xl"  # D shared by v1
    assert _matching_preset(xl.generator, None) == "transgan-xl"
    assert _matching_preset(_reference_config(), None) == ""


def _reference_config() -> object:
    return convert_checkpoint(FIXTURES / "v1-small.pth").generator.config
