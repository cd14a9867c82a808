"""Tests for DiffAugment: shapes, gradients, geometry of translation and cutout, colour ranges."""

import pytest
import torch

from transgan.errors import AugmentError
from transgan.train.augment import DiffAugment, parse_policy
from transgan.train.choices import AUGMENT_PARAMS, AugmentParams

POLICIES = ["color", "translation", "cutout", "translation,cutout,color"]


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def test_parse_policy() -> None:
    assert parse_policy("translation,cutout,color") == ("translation", "cutout", "color")
    assert parse_policy(" color , cutout ") == ("color", "cutout")
    assert parse_policy("") == ()
    assert parse_policy("none") == ()


def test_parse_policy_rejects_unknown_and_duplicates() -> None:
    with pytest.raises(AugmentError) as info:
        parse_policy("translation,flip")
    message = str(info.value)
    assert "flip" in message
    for name in ("color", "translation", "cutout"):
        assert name in message
    with pytest.raises(AugmentError):
        parse_policy("color,color")


def test_param_sets_and_default() -> None:
    assert AUGMENT_PARAMS["transgan"] == AugmentParams(0.2, 0.5, 0.3)
    assert AUGMENT_PARAMS["diffaugment"] == AugmentParams(0.125, 0.5, 1.0)
    assert DiffAugment().params == AUGMENT_PARAMS["transgan"]
    assert DiffAugment().policy == ("translation", "cutout", "color")
    with pytest.raises(AugmentError):
        DiffAugment(params="bogus")


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("policy", POLICIES)
def test_shape_and_dtype_preserved(channels: int, policy: str) -> None:
    for dtype in (torch.float32, torch.float64):
        x = torch.randn(4, channels, 16, 16, dtype=dtype)
        y = DiffAugment(policy, params="diffaugment")(x)
        assert y.shape == x.shape
        assert y.dtype == dtype


def test_empty_policy_is_identity() -> None:
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(DiffAugment("")(x), x)
    assert torch.equal(DiffAugment("none")(x), x)


@pytest.mark.parametrize("policy", POLICIES)
def test_gradient_flows_to_input(policy: str) -> None:
    x = torch.randn(4, 3, 16, 16, requires_grad=True)
    weights = torch.randn(4, 3, 16, 16)
    (DiffAugment(policy, params="diffaugment")(x) * weights).sum().backward()
    assert x.grad is not None
    assert torch.isfinite(x.grad).all()
    assert x.grad.abs().sum() > 0


def test_fresh_randomness_each_call() -> None:
    augment = DiffAugment(params="diffaugment")
    x = torch.randn(4, 3, 16, 16)
    assert not torch.equal(augment(x), augment(x))


def _shifted(image: torch.Tensor, dy: int, dx: int) -> torch.Tensor:
    """Reference translation: roll, then zero the rows and columns that wrapped around."""
    out = torch.roll(image, shifts=(dy, dx), dims=(-2, -1))
    h, w = image.shape[-2:]
    rows = torch.arange(h) - dy
    cols = torch.arange(w) - dx
    keep = ((rows >= 0) & (rows < h))[:, None] & ((cols >= 0) & (cols < w))[None, :]
    return out * keep


def test_translation_matches_roll_with_zero_fill() -> None:
    size, batch = 16, 64
    params = AugmentParams(translation_ratio=0.2, cutout_ratio=0.5, cutout_prob=1.0)
    max_shift = int(size * 0.2 + 0.5)
    # Distinct positive pixel values let any surviving pixel reveal the drawn offset.
    image = torch.arange(1, 2 * size * size + 1, dtype=torch.float64).view(1, 2, size, size)
    out = DiffAugment("translation", params)(image.expand(batch, -1, -1, -1))
    seen_offsets = set()
    for sample in out:
        c, r, col = (int(v) for v in torch.nonzero(sample)[0])
        source = int(sample[c, r, col].item()) - 1
        src_r, src_c = divmod(source % (size * size), size)
        dy, dx = r - src_r, col - src_c
        assert -max_shift <= dy <= max_shift and -max_shift <= dx <= max_shift
        assert torch.equal(sample, _shifted(image[0], dy, dx))
        seen_offsets.add((dy, dx))
    assert len(seen_offsets) > 10


def test_translation_single_pixel_moves_or_vanishes() -> None:
    size = 16
    max_shift = int(size * 0.2 + 0.5)
    image = torch.zeros(256, 1, size, size)
    image[:, 0, 1, 14] = 1.0
    out = DiffAugment("translation")(image)
    vanished = 0
    for sample in out[:, 0]:
        total = sample.sum().item()
        if total == 0:
            vanished += 1
            continue
        assert total == 1.0
        r, c = (int(v) for v in torch.nonzero(sample)[0])
        assert abs(r - 1) <= max_shift and abs(c - 14) <= max_shift
    assert 0 < vanished < 256


def _zero_box(sample: torch.Tensor) -> tuple[int, int, int, int, int]:
    """Bounding box (top, left, height, width) of the zeros of a 2-D mask and their count."""
    zeros = torch.nonzero(sample == 0)
    top, left = (int(v) for v in zeros.min(dim=0).values)
    bottom, right = (int(v) for v in zeros.max(dim=0).values)
    return top, left, bottom - top + 1, right - left + 1, zeros.shape[0]


@pytest.mark.parametrize("size", [16, 15])
def test_cutout_zeroes_one_clipped_square(size: int) -> None:
    params = AugmentParams(translation_ratio=0.2, cutout_ratio=0.5, cutout_prob=1.0)
    side = int(size * 0.5 + 0.5)
    out = DiffAugment("cutout", params)(torch.ones(512, 3, size, size))
    assert torch.equal(out[:, 0], out[:, 1]) and torch.equal(out[:, 0], out[:, 2])
    unclipped = 0
    for sample in out[:, 0]:
        top, left, height, width, count = _zero_box(sample)
        assert count == height * width  # the zeros form a full rectangle
        assert height <= side and width <= side
        assert height == side or top == 0 or top + height == size
        assert width == side or left == 0 or left + width == size
        unclipped += height == side and width == side
    assert unclipped > 0


def test_cutout_batch_coin_probability() -> None:
    augment = DiffAugment("cutout")  # official TransGAN set: cutout_prob 0.3
    x = torch.ones(3, 1, 8, 8)
    calls = 2000
    with_cutout = 0
    for _ in range(calls):
        zeroed = (augment(x) == 0).flatten(1).any(dim=1)
        assert zeroed.all() or not zeroed.any()  # one coin for the whole batch
        with_cutout += bool(zeroed.all())
    assert abs(with_cutout / calls - 0.3) < 0.05


def test_color_brightness_bounded_on_constant_image() -> None:
    x = torch.full((512, 3, 8, 8), 0.25)
    out = DiffAugment("color")(x)
    # Saturation and contrast are neutral on a constant image, so only brightness remains.
    shift = out - 0.25
    assert torch.allclose(shift, shift[:, :1, :1, :1].expand_as(shift), atol=1e-6)
    assert shift.abs().max() <= 0.5 + 1e-6
    assert shift.min() < -0.45 and shift.max() > 0.45


def test_color_saturation_and_contrast_ranges() -> None:
    x = torch.zeros(1024, 3, 4, 4)
    x[:, 0] = 1.0
    x[:, 1] = -1.0
    out = DiffAugment("color")(x)
    # Channel 2 sits at both means, so it carries the brightness shift alone.
    brightness = out[:, 2]
    assert brightness.abs().max() <= 0.5 + 1e-6
    scale = out[:, 0] - brightness  # saturation in [0, 2] times contrast in [0.5, 1.5]
    assert torch.allclose(out[:, 1] - brightness, -scale, atol=1e-6)
    assert scale.min() >= -1e-6 and scale.max() <= 3.0 + 1e-6
    assert scale.min() < 0.1 and scale.max() > 2.5


def test_color_single_channel() -> None:
    x = torch.randn(8, 1, 8, 8)
    out = DiffAugment("color")(x)
    assert out.shape == x.shape
    assert torch.isfinite(out).all()
    assert not torch.equal(out, x)


def test_transforms_run_in_the_policy_order() -> None:
    """Official TransGAN runs ``translation,cutout,color`` in that order: colour after
    cutout shifts the erased pixels too, so nothing stays exactly zero."""
    params = AugmentParams(translation_ratio=0.0, cutout_ratio=0.5, cutout_prob=1.0)
    x = torch.ones(64, 3, 8, 8)
    torch.manual_seed(0)
    cut_then_colour = DiffAugment("cutout,color", params)(x)
    assert (cut_then_colour == 0).sum() == 0
    colour_then_cut = DiffAugment("color,cutout", params)(x)
    assert ((colour_then_cut == 0).flatten(1).sum(1) > 0).all()


@pytest.mark.parametrize(("policy", "size", "low", "high"),
                         [("erase_ratio", 40, 8, 28), ("stl_erase_ratio", 48, 20, 44)])
def test_official_v2_erasers_draw_their_rectangle_sides(
    policy: str, size: int, low: int, high: int
) -> None:
    """erase_ratio: sides in [0.2, 0.7] x size; stl_erase_ratio: [20, size/2 + 20]; one size
    per batch, one centre per sample (official models_search/diff_aug.py)."""
    params = AugmentParams(translation_ratio=0.2, cutout_ratio=0.5, cutout_prob=1.0)
    augment = DiffAugment(policy, params)
    heights = set()
    for _ in range(60):
        out = augment(torch.ones(8, 1, size, size))[:, 0]
        boxes = [_zero_box(sample) for sample in out]
        full = [b for b in boxes if b[0] > 0 and b[1] > 0 and b[0] + b[2] < size
                and b[1] + b[3] < size]
        for _top, _left, height, width, count in boxes:
            assert count == height * width and height <= high and width <= high
        if full:
            assert len({(b[2], b[3]) for b in full}) == 1  # one rectangle size per batch
            heights.add(full[0][2])
    assert min(heights) >= low and max(heights) <= high and len(heights) > 3
