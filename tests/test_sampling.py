"""Tests for sample grids: layout against torchvision's make_grid, grayscale, enlargement."""

import pytest
import torch
from torchvision.utils import make_grid

from transgan.sampling import enlarge_small, grid_image, grid_tensor, to_uint8


@pytest.mark.parametrize(("n", "nrow"), [(2, 1), (5, 3), (6, 3), (4, 8)])
def test_grid_matches_torchvision_layout(n: int, nrow: int) -> None:
    torch.manual_seed(0)
    images = torch.rand(n, 3, 64, 64) * 2 - 1
    expected = make_grid(to_uint8(images), nrow=nrow, padding=2, pad_value=255)
    assert torch.equal(grid_tensor(images, nrow), expected)


def test_gray_grid_keeps_one_channel_and_enlarges_small_tiles() -> None:
    images = torch.rand(4, 1, 16, 16) * 2 - 1
    grid = grid_tensor(images, nrow=2)
    tile = enlarge_small(images).shape[-1]
    assert tile >= 64
    assert grid.shape == (1, 2 * (tile + 2) + 2, 2 * (tile + 2) + 2)
    assert grid_image(images).mode == "L"
