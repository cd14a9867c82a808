"""Evaluation metrics: the registry and options, the digits classifier metric, ``transgan eval``."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import transgan.cli
from transgan.errors import MetricError
from transgan.metrics import digits as digits_mod
from transgan.metrics import references as references_mod
from transgan.metrics.digits import (
    digits_extractor,
    digits_real_floor,
    digits_split_uint8,
    load_digits_classifier,
)
from transgan.metrics.evaluate import MetricOptions, evaluate_generator
from transgan.metrics.extractors import build_extractors
from transgan.metrics.references import reference_statistics, resolve_reference
from transgan.metrics.registry import METRICS, parse_metrics
from transgan.models import generator_from_config, get_preset

TINY_TRAIN = [
    "train", "--preset", "digits-vit", "--images", "64", "--batch", "16", "--n-critic", "1",
    "--no-progress", "--gen", "width=32", "--gen", "depths=[1,1]", "--gen", "latent_dim=16",
    "--disc", "width=32", "--disc", "depth=1",
]


# ---- the registry and the options ------------------------------------------------------------


def test_parse_metrics_accepts_lists_and_rejects_unknown_names() -> None:
    assert parse_metrics("fid, IS,fid") == ("fid", "is")
    assert parse_metrics(["digits-fid"]) == ("digits-fid",)
    with pytest.raises(MetricError, match="unknown metric 'fjd'"):
        parse_metrics("fid,fjd")
    with pytest.raises(MetricError):
        parse_metrics("")


def test_the_registry_declares_each_metric_and_the_command_line_lists_it() -> None:
    assert tuple(METRICS) == ("fid", "is", "kid", "prc",
                              "digits-fid", "digits-is", "digits-kid", "digits-prc")
    assert METRICS["digits-prc"].values == ("digits-precision", "digits-recall")
    assert METRICS["kid"].values == ("kid",) and METRICS["kid"].needs_reference_features
    assert not METRICS["digits-is"].needs_reference
    assert (METRICS["fid"].extractor, METRICS["digits-fid"].extractor) == (
        "inception-v3-compat", "transgan-digits")
    parser = transgan.cli.build_parser()
    command = next(a for a in parser._actions if a.dest == "command").choices["eval"]
    option = next(a for a in command._actions if "--metrics" in a.option_strings)
    assert option.help.startswith(f"comma-separated: {', '.join(METRICS)} ")


def test_metric_options_are_normalised_and_checked_when_made() -> None:
    options = MetricOptions(("FID", " is", "fid"), 10, "digits-train")
    assert options.metrics == ("fid", "is")
    for metrics, num, batch, message in [
        (("fjd",), 10, 100, "unknown metric 'fjd'"),
        (("fid",), 1, 100, "number of samples must be an integer >= 2, got 1"),
        (("fid",), 10, 0, "batch must be a positive integer, got 0"),
        (("digits-prc",), 3, 100, "precision and recall need more than 3 samples"),
    ]:
        with pytest.raises(MetricError, match=message):
            MetricOptions(metrics, num, "digits-train", batch=batch)


# ---- the digits classifier -------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _trained_classifier(digits_cache: Path) -> None:
    """Every test here uses the session's trained digits classifier."""


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A digits run trained for 64 images (practically untrained, but a real checkpoint)."""
    out = tmp_path_factory.mktemp("tiny-run")
    assert transgan.cli.main([*TINY_TRAIN, "--out", str(out)]) == 0
    return out


def _untrained_generator() -> torch.nn.Module:
    torch.manual_seed(0)
    config = dataclasses.replace(
        get_preset("digits").architecture.generator, width=32, depths=(1, 1), latent_dim=16
    )
    return generator_from_config(config).eval()


def test_digits_classifier_is_accurate_and_cached(
    digits_cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_training() -> None:
        raise AssertionError("the cached classifier was retrained")

    monkeypatch.setattr(digits_mod, "train_digits_classifier", no_training)
    classifier = load_digits_classifier()
    assert not classifier.trained_now
    assert classifier.path.parent == digits_cache
    assert classifier.test_accuracy >= 0.97
    assert len(classifier.weights_sha256) == 64


def test_digits_extractor_accepts_gray_and_rgb() -> None:
    images = digits_split_uint8("test")[0][:8]
    network, _ = digits_extractor()
    gray_features, gray_logits = network(images)
    rgb_features, _ = network(images.expand(-1, 3, -1, -1))
    big_features, _ = network(images.repeat_interleave(2, -1).repeat_interleave(2, -2))
    assert gray_features.shape == (8, 64) and gray_logits.shape == (8, 10)
    torch.testing.assert_close(rgb_features, gray_features, atol=1e-4, rtol=1e-4)
    assert torch.isfinite(big_features).all()


def test_digits_fid_of_real_data_is_far_below_untrained_samples(tmp_path: Path) -> None:
    floor = digits_real_floor()
    result = evaluate_generator(_untrained_generator(), MetricOptions(
        ("digits-fid", "digits-kid", "digits-is"), 200, "digits-train", progress=False))
    values = result["metrics"]
    assert floor["digits-fid"] < values["digits-fid"] / 3
    assert floor["digits-kid"] < values["digits-kid"] / 3
    assert floor["digits-is"] > 5 and 1 <= values["digits-is"] < floor["digits-is"]
    protocol = result["protocol"]
    assert protocol["feature_extractor"] == "transgan-digits"
    assert protocol["reference"] == "digits-train" and protocol["reference_size"] == 1437


def test_reference_statistics_are_cached_by_content(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reference = resolve_reference("digits-test", 16, 1)
    extractor = build_extractors({"digits"}, "cpu", None, None)["digits"]
    first = reference_statistics(reference, extractor, cache_dir=tmp_path, progress=False)
    assert first.path is not None and first.path.is_file() and first.size == 360

    def no_extraction(*args: object, **kwargs: object) -> None:
        raise AssertionError("reference features were recomputed")

    monkeypatch.setattr(references_mod, "_uint8_batches", no_extraction)
    second = reference_statistics(reference, extractor, cache_dir=tmp_path, progress=False)
    assert second.path == first.path
    np.testing.assert_array_equal(second.features, first.features)
    # The same spec at another resolution is other content: another cache entry.
    other = resolve_reference("digits-test", 8, 1)
    with pytest.raises(AssertionError, match="recomputed"):
        reference_statistics(other, extractor, cache_dir=tmp_path, progress=False)


def test_a_damaged_reference_cache_is_recomputed(tmp_path: Path) -> None:
    reference = resolve_reference("digits-test", 16, 1)
    extractor = build_extractors({"digits"}, "cpu", None, None)["digits"]
    first = reference_statistics(reference, extractor, cache_dir=tmp_path, progress=False)
    assert first.path is not None
    first.path.write_bytes(first.path.read_bytes()[:100])  # a write cut short
    again = reference_statistics(reference, extractor, cache_dir=tmp_path, progress=False)
    np.testing.assert_array_equal(again.features, first.features)
    np.testing.assert_allclose(again.mu, first.mu)


def test_npz_reference_gives_the_same_numbers(tmp_path: Path) -> None:
    generator = _untrained_generator()
    by_data_set = MetricOptions(("digits-fid", "digits-kid"), 300, "digits-test", progress=False)
    by_data = evaluate_generator(generator, by_data_set)
    extractor = build_extractors({"digits"}, "cpu", None, None)["digits"]
    reference = resolve_reference("digits-test", 16, 1)
    stats = reference_statistics(reference, extractor, progress=False)
    stats_file = tmp_path / "digits-test.npz"
    np.savez(stats_file, mu=stats.mu, sigma=stats.sigma, features=stats.features)
    by_stats_file = dataclasses.replace(by_data_set, ref=str(stats_file))
    by_file = evaluate_generator(generator, by_stats_file)
    assert by_file["metrics"] == pytest.approx(by_data["metrics"], rel=1e-12)
    # Without features there is no KID, and broken statistics fail before sampling.
    np.savez(stats_file, mu=stats.mu, sigma=stats.sigma)
    with pytest.raises(MetricError, match="needs reference features"):
        evaluate_generator(generator, by_stats_file)
    np.savez(stats_file, mu=stats.mu, sigma=stats.sigma * np.nan)
    with pytest.raises(MetricError, match="NaN"):
        evaluate_generator(generator, by_stats_file)
    np.savez(stats_file, mu=stats.mu, sigma=stats.sigma[:3])
    with pytest.raises(MetricError, match="sigma"):
        evaluate_generator(generator, by_stats_file)


def test_digits_metrics_agree_with_torch_fidelity() -> None:
    torch_fidelity = pytest.importorskip("torch_fidelity")

    class Images(torch.utils.data.Dataset):
        def __init__(self, images: torch.Tensor) -> None:
            self.images = images

        def __len__(self) -> int:
            return len(self.images)

        def __getitem__(self, index: int) -> torch.Tensor:
            return self.images[index].expand(3, -1, -1).contiguous()

    train, test = digits_split_uint8("train")[0], digits_split_uint8("test")[0]
    theirs = torch_fidelity.calculate_metrics(
        input1=Images(test), input2=Images(train), cuda=False, fid=True, kid=True, isc=True,
        feature_extractor="transgan-digits", verbose=False, cache=False, save_cpu_ram=True,
        kid_subsets=20, kid_subset_size=360, samples_shuffle=False, rng_seed=0,
    )
    ours = digits_real_floor(kid_subsets=20)
    assert ours["digits-fid"] == pytest.approx(theirs["frechet_inception_distance"], rel=1e-4)
    assert ours["digits-is"] == pytest.approx(theirs["inception_score_mean"], rel=1e-6)
    assert ours["digits-kid"] == pytest.approx(
        theirs["kernel_inception_distance_mean"], rel=1e-3
    )


def test_evaluate_rejects_bad_requests_before_sampling() -> None:
    class Exploding(torch.nn.Module):
        latent_dim, img_size, channels = 16, 16, 1

        def forward(self, z: torch.Tensor) -> torch.Tensor:
            raise AssertionError("the generator must not be called")

    for ref, message in [
        ("imagenet", "unknown reference"),
        ("missing.npz", "not found"),
        ("folder:/no/such/dir", "reference folder:"),
    ]:
        with pytest.raises(MetricError, match=message) as info:
            evaluate_generator(Exploding(), MetricOptions(("digits-fid",), 10, ref,
                                                          progress=False))
        assert "\n" not in str(info.value)
    with pytest.raises(MetricError, match="truncation PSI must be a number > 0"):
        evaluate_generator(Exploding(), MetricOptions(("digits-fid",), 10, "digits-train",
                                                      progress=False), truncation=-1.0)


# ---- transgan eval ---------------------------------------------------------------------------


def _eval(argv: list[str]) -> int:
    return transgan.cli.main(["eval", *argv])


def test_cmd_eval_writes_json_beside_the_checkpoint(
    tiny_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _eval([str(tiny_run), "--num", "300", "--no-progress"]) == 0
    path = tiny_run / "checkpoints" / "metrics-64.json"
    record = json.loads(path.read_text())
    assert record["images_trained"] == 64
    assert record["checkpoint"] == str(tiny_run / "checkpoints" / "latest.pt")
    assert set(record["metrics"]) == {"digits-fid", "digits-is", "digits-is_std"}
    protocol = record["protocol"]
    assert protocol["num_samples"] == 300
    assert protocol["reference"] == "digits-train"
    assert protocol["feature_extractor"] == "transgan-digits"
    assert len(protocol["weights_sha256"]) == 16
    assert protocol["seed"] == 0
    assert protocol["truncation"] is None and "per_truncation" not in record
    assert record["real_floor"]["digits-fid"] < record["metrics"]["digits-fid"]
    out = capsys.readouterr().out
    assert "digits-fid" in out and "real floor" in out and "N=300 vs digits-train" in out


def test_every_evaluation_is_kept_and_the_card_shows_the_one_of_most_samples(
    tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tiny_run / "checkpoints"
    (folder / "eval-history.jsonl").unlink(missing_ok=True)
    assert _eval([str(tiny_run), "--num", "400", "--no-progress"]) == 0
    assert _eval([str(tiny_run), "--num", "200", "--metrics", "digits-kid",
                  "--no-progress"]) == 0
    assert "replaces an earlier evaluation, which the history keeps" in capsys.readouterr().out
    history = [json.loads(line) for line in (folder / "eval-history.jsonl").read_text()
               .splitlines()]
    assert [r["protocol"]["num_samples"] for r in history] == [400, 200]
    assert "digits-fid" in history[0]["metrics"] and "digits-kid" in history[1]["metrics"]
    assert all(r["file"] == "metrics-64.json" and r["evaluated_at"] for r in history)
    model = tmp_path / "model"
    assert transgan.cli.main(["export", str(tiny_run), "--out", str(model)]) == 0
    shown = json.loads((model / "config.json").read_text())["metrics"]
    assert shown["protocol"]["num_samples"] == 400 and "digits-fid" in shown["metrics"]
    assert "400 samples" in (model / "README.md").read_text()


def test_cmd_eval_options_and_out(tiny_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "m.json"
    argv = [str(tiny_run), "--metrics", "digits-kid", "--num", "200", "--ref", "digits-test",
            "--seed", "3", "--batch", "64", "--out", str(out), "--no-progress"]
    assert _eval(argv) == 0
    record = json.loads(out.read_text())
    assert set(record["metrics"]) == {"digits-kid", "digits-kid_std"}
    assert record["protocol"]["reference"] == "digits-test"
    assert record["protocol"]["seed"] == 3


def test_cmd_eval_unknown_metric_is_one_line_exit_2(
    tiny_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _eval([str(tiny_run), "--metrics", "fid,nope", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("transgan: error:") and "unknown metric 'nope'" in err
    assert "\n" not in err


def test_cmd_eval_truncations_give_metrics_per_psi_and_a_plot(
    tiny_run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sweep.json"
    argv = [str(tiny_run), "--metrics", "digits-fid,digits-prc", "--num", "200",
            "--truncation", "0.5,1,none", "--out", str(out), "--no-progress"]
    assert _eval(argv) == 0
    record = json.loads(out.read_text())
    sweep = record["per_truncation"]
    assert [row["truncation"] for row in sweep] == [0.5, 1.0, None]
    for row in sweep:
        assert set(row["metrics"]) == {"digits-fid", "digits-precision", "digits-recall"}
        assert 0 <= row["metrics"]["digits-precision"] <= 1
        assert 0 <= row["metrics"]["digits-recall"] <= 1
    assert len({row["metrics"]["digits-fid"] for row in sweep}) == 3
    # The first truncation fills the fields of a single evaluation.
    assert record["metrics"] == sweep[0]["metrics"]
    assert record["protocol"]["truncation"] == 0.5
    assert record["protocol"]["prc_neighbours"] == 3
    floor = record["real_floor"]
    assert 0.5 < floor["digits-precision"] <= 1 and 0.5 < floor["digits-recall"] <= 1
    plot = out.with_suffix(".png")
    with Image.open(plot) as image:
        assert image.format == "PNG" and image.size[0] > image.size[1] > 100
        image.verify()
    printed = capsys.readouterr().out
    for needle in ("truncation 0.5:", "truncation none:", "digits-precision", "digits-recall",
                   "seed 0, truncation 1", f"wrote {plot}"):
        assert needle in printed


def test_cmd_eval_one_truncation_keeps_the_single_format(tiny_run: Path, tmp_path: Path) -> None:
    out = tmp_path / "one.json"
    argv = [str(tiny_run), "--metrics", "digits-fid", "--num", "100", "--truncation", "0.7",
            "--out", str(out), "--no-progress"]
    assert _eval(argv) == 0
    record = json.loads(out.read_text())
    assert record["protocol"]["truncation"] == 0.7 and "per_truncation" not in record
    assert not out.with_suffix(".png").exists()
