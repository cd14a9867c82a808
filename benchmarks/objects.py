"""Pictures of four simple coloured objects, drawn fresh from a seed, and a classifier of them.

The kinds: a red apple (disc, stem, leaf), a green tree (triangle on a trunk), a blue house
(square under a dark roof) and a yellow star. Each picture has its own size (40-72 px a side,
not always square), pastel background, object size, position and shade, so a generator must
learn shapes and colours rather than copy a few files. ``ObjectClassifier`` is a small CNN
trained on freshly drawn pictures, half of them with objects of any colour, so that it knows
the kinds by their shapes as well as their colours (a red blob is not yet an apple), and with
pixel noise and blur, so that a generator's grain does not throw it; like the digits metric
judges digits, it judges samples by the share it recognises confidently.
"""

from __future__ import annotations

import colorsys
import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw
from torch import Tensor, nn

KINDS = ("apple", "tree", "house", "star")
MIN_SIDE, MAX_SIDE = 40, 72
# A sample counts as recognised when the classifier's top probability is at least this.
CONFIDENCE = 0.9


def _kind_shade(rng: np.random.Generator, rgb: tuple[int, int, int], spread: int = 30
                ) -> tuple[int, int, int]:
    r, g, b = (int(np.clip(c + rng.integers(-spread, spread + 1), 0, 255)) for c in rgb)
    return r, g, b


def _star(cx: float, cy: float, outer: float, turn: float) -> list[tuple[float, float]]:
    points = []
    for k in range(10):
        radius = outer if k % 2 == 0 else outer * 0.45
        angle = turn + k * math.pi / 5 - math.pi / 2
        points.append((cx + radius * math.cos(angle), cy + radius * math.sin(angle)))
    return points


def _any_colour(rng: np.random.Generator) -> tuple[int, int, int]:
    """A saturated colour of random hue, darker than the pastel backgrounds."""
    r, g, b = colorsys.hsv_to_rgb(rng.uniform(), rng.uniform(0.6, 1.0), rng.uniform(0.45, 0.9))
    return int(r * 255), int(g * 255), int(b * 255)


def draw(kind: str, rng: np.random.Generator, any_colour: bool = False) -> Image.Image:
    """One RGB picture of ``kind`` with random size, background, placement and shade; with
    ``any_colour`` its parts take random hues instead of the kind's colours."""
    def shade(rgb: tuple[int, int, int], spread: int = 30) -> tuple[int, int, int]:
        return _any_colour(rng) if any_colour else _kind_shade(rng, rgb, spread)

    width, height = (int(v) for v in rng.integers(MIN_SIDE, MAX_SIDE + 1, size=2))
    side = min(width, height)
    background = tuple(int(v) for v in rng.integers(200, 256, size=3))
    img = Image.new("RGB", (width, height), background)
    pen = ImageDraw.Draw(img)
    size = side * rng.uniform(0.55, 0.75)
    cx = width / 2 + side * rng.uniform(-0.06, 0.06)
    cy = height / 2 + side * rng.uniform(-0.06, 0.06)
    half = size / 2
    if kind == "apple":
        r = half * 0.85
        pen.ellipse((cx - r, cy - r + half * 0.15, cx + r, cy + r + half * 0.15),
                    fill=shade((200, 30, 30)))
        pen.rectangle((cx - size * 0.03, cy - half, cx + size * 0.03, cy - r + half * 0.2),
                      fill=(100, 60, 20))
        pen.ellipse((cx + size * 0.04, cy - half, cx + size * 0.25, cy - half + size * 0.12),
                    fill=shade((40, 160, 40)))
    elif kind == "tree":
        pen.rectangle((cx - size * 0.08, cy + half * 0.4, cx + size * 0.08, cy + half),
                      fill=(110, 70, 30))
        pen.polygon([(cx, cy - half), (cx - half * 0.8, cy + half * 0.45),
                     (cx + half * 0.8, cy + half * 0.45)], fill=shade((30, 140, 40)))
    elif kind == "house":
        pen.rectangle((cx - half * 0.75, cy - half * 0.1, cx + half * 0.75, cy + half),
                      fill=shade((40, 80, 200)))
        pen.polygon([(cx, cy - half), (cx - half * 0.95, cy - half * 0.05),
                     (cx + half * 0.95, cy - half * 0.05)], fill=shade((60, 40, 40), 15))
    elif kind == "star":
        pen.polygon(_star(cx, cy, half, rng.uniform(-0.2, 0.2)), fill=shade((240, 190, 20)))
    else:
        raise ValueError(f"unknown kind {kind!r}")
    return img


def write_folder(root: Path, per_kind: int, seed: int = 0, any_colour: bool = False) -> int:
    """Write ``per_kind`` pictures of each kind under root, half flat (PNG) and half in
    subfolders of mixed layout (JPEG), in random hues with ``any_colour``; returns the number
    written."""
    rng = np.random.default_rng(seed)
    written = 0
    for k, kind in enumerate(KINDS):
        for i in range(per_kind):
            img = draw(kind, rng, any_colour)
            if i % 2 == 0:
                path = root / f"{kind}-{i:04d}.png"
            else:
                path = root / f"batch{(i + k) % 3}" / f"IMG_{k}{i:04d}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            img.save(path, quality=92) if path.suffix == ".jpg" else img.save(path)
            written += 1
    return written


def fresh_batch(count: int, resolution: int, seed: int, any_colour: bool = False
                ) -> tuple[Tensor, Tensor]:
    """``count`` new pictures as the trainer reads a folder (centre square, bicubic, [-1, 1])
    with their kind indices, evenly spread over the kinds."""
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for i in range(count):
        kind = i % len(KINDS)
        img = draw(KINDS[kind], rng, any_colour)
        w, h = img.size
        side = min(w, h)
        box = ((w - side) / 2, (h - side) / 2, (w + side) / 2, (h + side) / 2)
        img = img.resize((resolution, resolution), Image.Resampling.BICUBIC, box=box)
        images.append(torch.from_numpy(np.asarray(img, dtype=np.float32)).permute(2, 0, 1))
        labels.append(kind)
    return torch.stack(images) / 127.5 - 1.0, torch.tensor(labels)


class ObjectClassifier(nn.Module):
    """Small CNN over (N, 3, R, R) images in [-1, 1]: logits of the four kinds."""

    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1),
        )
        self.head = nn.Linear(64, len(KINDS))

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x).flatten(1))


def train_classifier(resolution: int, count: int = 8000, epochs: int = 8,
                     seed: int = 1) -> ObjectClassifier:
    """A classifier trained on ``count`` freshly drawn pictures, half of any colour, seen
    with random noise and blur (seeds differ from the data's)."""
    torch.manual_seed(seed)
    kind_coloured = fresh_batch(count // 2, resolution, seed)
    any_coloured = fresh_batch(count - count // 2, resolution, seed + 1, any_colour=True)
    images = torch.cat([kind_coloured[0], any_coloured[0]])
    labels = torch.cat([kind_coloured[1], any_coloured[1]])
    model = ObjectClassifier()
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    for _ in range(epochs):
        order = torch.randperm(count)
        for start in range(0, count, 64):
            batch = order[start:start + 64]
            loss = F.cross_entropy(model(_roughen(images[batch])), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return model.eval()


def _roughen(images: Tensor) -> Tensor:
    """Each image with Gaussian pixel noise of a random strength (up to 0.3 of the [-1, 1]
    range) and, half of them, a 3x3 blur."""
    sigma = torch.rand(len(images), 1, 1, 1) * 0.3
    blurred = F.avg_pool2d(images, 3, stride=1, padding=1, count_include_pad=False)
    pick = torch.rand(len(images), 1, 1, 1) < 0.5
    return torch.where(pick, blurred, images) + sigma * torch.randn_like(images)


@torch.no_grad()
def recognised(model: ObjectClassifier, images: Tensor) -> tuple[float, list[float]]:
    """The share of images recognised with confidence >= CONFIDENCE, and of those, the
    share of each kind."""
    probs = torch.cat([model(images[i:i + 256]).softmax(1) for i in range(0, len(images), 256)])
    top, kind = probs.max(1)
    sure = top >= CONFIDENCE
    counts = torch.bincount(kind[sure], minlength=len(KINDS)).float()
    shares = (counts / counts.sum().clamp(min=1)).tolist()
    return float(sure.float().mean()), shares
