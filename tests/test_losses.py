"""The loss objects against hand-computed values on known logits, linear and attention Ds."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from transgan.cli.command_line import build_parser
from transgan.errors import LossError
from transgan.lazy import load
from transgan.train.choices import LOSS_REGISTRY, LOSSES
from transgan.train.losses import (
    GANLoss,
    Hinge,
    LogisticR1,
    RelativisticPairing,
    WGANGPEps,
    ZeroCentredLoss,
    logits,
    make_loss,
    mode_seeking_loss,
    paired,
)


class LinearD(nn.Module):
    """D(x) = w . flatten(x) + b, so its input gradient is w everywhere."""

    def __init__(self, numel: int) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.linspace(-0.5, 0.7, numel, dtype=torch.float64))
        self.b = nn.Parameter(torch.tensor(0.3, dtype=torch.float64))

    def forward(self, x: Tensor) -> Tensor:
        return x.flatten(1) @ self.w + self.b


class AttentionD(nn.Module):
    """Tiny D with one fused-attention layer over pixels; records if flash SDPA was enabled."""

    def __init__(self, channels: int = 3, dim: int = 8) -> None:
        super().__init__()
        self.embed = nn.Linear(channels, dim)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.head = nn.Linear(dim, 1)
        self.flash_enabled: list[bool] = []

    def forward(self, x: Tensor) -> Tensor:
        self.flash_enabled.append(torch.backends.cuda.flash_sdp_enabled())
        tokens = self.embed(x.flatten(2).transpose(1, 2))
        q, k, v = self.qkv(tokens).unsqueeze(1).chunk(3, dim=-1)
        attended = F.scaled_dot_product_attention(q, k, v).squeeze(1)
        return self.head(attended.mean(dim=1)).squeeze(-1)


SHAPE = (4, 2, 3, 3)


def identity_d(x: Tensor) -> Tensor:
    """A D whose logits are its (B, 1) inputs."""
    return x.sum(dim=1)


def _column(*values: float) -> Tensor:
    return torch.tensor(values, dtype=torch.float64).view(-1, 1)


@pytest.fixture()
def setup() -> tuple[LinearD, Tensor, Tensor]:
    torch.manual_seed(0)
    return LinearD(math.prod(SHAPE[1:])), torch.randn(SHAPE, dtype=torch.float64), \
        torch.randn(SHAPE, dtype=torch.float64)


def _close(a: Tensor, b: Tensor | float) -> bool:
    return torch.allclose(a, torch.as_tensor(b, dtype=a.dtype), rtol=1e-9, atol=1e-9)


REAL, FAKE = _column(1.0, 3.0, -0.25), _column(0.5, -1.5, 2.0)


def test_wgangp_eps_on_known_logits() -> None:
    # Official TransGAN: d_loss = E[D(fake)] - E[D(real)] + 1e-3 (E[D(real)])^2, the square
    # of the mean real logit (mean 1.25 -> 1.5625), not the mean of the squares.
    loss, stats = WGANGPEps().d_main(identity_d, REAL, FAKE)
    assert _close(stats["drift"], 1.5625)
    assert _close(loss, 1.0 / 3 - 1.25 + 1e-3 * 1.5625)
    assert _close(stats["d_real"], 1.25) and _close(stats["d_fake"], 1.0 / 3)
    bare, _ = WGANGPEps(drift_weight=0.0).d_main(identity_d, REAL, FAKE)
    assert _close(bare, 1.0 / 3 - 1.25)
    g, g_stats = WGANGPEps().g_main(identity_d, FAKE)
    assert _close(g, -1.0 / 3) and _close(g_stats["g_d_fake"], 1.0 / 3)


def test_hinge_on_known_logits() -> None:
    loss, stats = Hinge().d_main(identity_d, REAL, FAKE)
    # real: relu(1 - [1, 3, -0.25]) = [0, 0, 1.25]; fake: relu(1 + [0.5, -1.5, 2]) = [1.5, 0, 3]
    assert _close(loss, 1.25 / 3 + 4.5 / 3)
    assert set(stats) == {"d_real", "d_fake", "d_real_sign"}
    assert _close(stats["d_real_sign"], 1 / 3)  # signs of [1, 3, -0.25]: the ADA heuristic
    assert _close(Hinge().g_main(identity_d, FAKE)[0], -1.0 / 3)
    assert not Hinge().regularised


def test_logistic_on_known_logits() -> None:
    loss, _ = LogisticR1().d_main(identity_d, REAL, FAKE)
    expected = sum(math.log1p(math.exp(f)) for f in (0.5, -1.5, 2.0)) / 3 + \
        sum(math.log1p(math.exp(-r)) for r in (1.0, 3.0, -0.25)) / 3
    assert _close(loss, expected)
    g, _ = LogisticR1().g_main(identity_d, FAKE)  # non-saturating: E[softplus(-D(G(z)))]
    assert _close(g, sum(math.log1p(math.exp(-f)) for f in (0.5, -1.5, 2.0)) / 3)


def test_penalties_of_a_linear_d_are_the_closed_form(setup) -> None:
    # D(x) = w.x + b has the input gradient w everywhere: GP = (|w| - 1)^2, R1 = |w|^2.
    D, real, fake = setup
    w_norm = D.w.detach().norm()
    gp, stats = WGANGPEps(gp_weight=10.0).d_regulariser(D, real, fake)
    assert _close(stats["gp"], (w_norm - 1) ** 2) and _close(gp, 10.0 * (w_norm - 1) ** 2)
    r1, stats = LogisticR1(r1_gamma=2.0).d_regulariser(D, real, fake)
    assert _close(stats["r1"], w_norm**2) and _close(r1, 1.0 * w_norm**2)


def test_lazy_regularisation_scales_the_term(setup) -> None:
    D, real, fake = setup
    for loss in (WGANGPEps(), LogisticR1()):
        once, _ = loss.d_regulariser(D, real, fake)
        lazy, _ = loss.d_regulariser(D, real, fake, scale=4.0)
        assert _close(lazy, 4.0 * once), loss.name


def test_only_a_nonzero_weight_regularises() -> None:
    assert WGANGPEps().regularised and LogisticR1().regularised
    assert not WGANGPEps(gp_weight=0.0).regularised and not LogisticR1(r1_gamma=0.0).regularised
    with pytest.raises(NotImplementedError):
        Hinge().d_regulariser(identity_d, REAL, FAKE)


def test_g_term_gradient_raises_d_of_fake(setup) -> None:
    D, _, fake = setup
    fake = fake.clone().requires_grad_(True)
    g, _ = WGANGPEps().g_main(D, fake)
    g.backward()
    # Lowering the loss means raising D(fake): the step -grad points along +w.
    expected = -D.w.detach().expand(SHAPE[0], -1) / SHAPE[0]
    assert torch.allclose(fake.grad.flatten(1), expected)


def test_every_registered_loss_resolves_to_its_class() -> None:
    for name, entry in LOSS_REGISTRY.items():
        cls = load(entry.target)
        assert issubclass(cls, GANLoss) and cls.name == name
        assert issubclass(cls, ZeroCentredLoss) == entry.zero_centred, name


def test_the_command_line_offers_the_registered_losses() -> None:
    train = next(a for a in build_parser()._actions if a.dest == "command").choices["train"]
    loss = next(a for a in train._actions if "--loss" in a.option_strings)
    assert loss.help.startswith(" | ".join(LOSS_REGISTRY))
    penalty = next(a for a in train._actions if "--penalty" in a.option_strings)
    assert "penalties of logistic-r1 and rpgan are taken" in penalty.help


@pytest.mark.parametrize("name", LOSSES)
def test_d_main_sends_no_gradient_into_fake(setup, name: str) -> None:
    D, real, fake = setup
    fake = fake.clone().requires_grad_(True)
    loss, _ = make_loss(name).d_main(D, real, fake)
    loss.backward()
    assert fake.grad is None
    assert D.w.grad is not None and torch.isfinite(D.w.grad).all()


@pytest.mark.parametrize("name", LOSSES)
def test_augment_applied_once_to_every_raw_d_input(setup, name: str) -> None:
    D, real, fake = setup
    seen: list[Tensor] = []

    def augment(x: Tensor) -> Tensor:
        seen.append(x.detach())
        return x + 100.0

    loss = make_loss(name)
    loss.d_main(D, real, fake, augment)
    if loss.regularised:
        loss.d_regulariser(D, real, fake, augment)
    assert len(seen) == (3 if loss.regularised else 2)
    # Raw images lie within [-10, 10]; an augmented one would be shifted by 100.
    assert all(x.abs().max() < 50 for x in seen)
    seen.clear()
    if loss.g_needs_reals:
        loss.g_main(D, fake, augment, lambda: logits(D, real, augment))
        assert len(seen) == 2  # G's samples and the real batch they are paired with
    else:
        loss.g_main(D, fake, augment)
        assert len(seen) == 1


@pytest.mark.parametrize("name", ["wgangp-eps", "logistic-r1", "rpgan"])
def test_attention_d_double_backward(name: str) -> None:
    torch.manual_seed(0)
    D = AttentionD()
    real, fake = torch.randn(2, 2, 3, 4, 4)
    loss = make_loss(name)
    main, _ = loss.d_main(D, real, fake)
    term, stats = loss.d_regulariser(D, real, fake)
    (main + term).backward()
    grads = [p.grad for p in D.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert torch.isfinite(stats["gp" if name == "wgangp-eps" else "r1"])
    # One D pass over real and fake together, then the penalty's pass on the math backend.
    assert D.flash_enabled == [True, False]
    assert torch.backends.cuda.flash_sdp_enabled()


def test_registry_makes_each_loss_with_its_own_weights() -> None:
    weights = {"gp_weight": 2.0, "drift_weight": 0.5, "r1_gamma": 3.0, "r2_gamma": 4.0}
    assert make_loss("wgangp-eps", **weights) == WGANGPEps(gp_weight=2.0, drift_weight=0.5)
    assert make_loss("hinge", **weights) == Hinge()
    assert make_loss("logistic-r1", **weights) == LogisticR1(r1_gamma=3.0)
    assert make_loss("rpgan", **weights) == RelativisticPairing(r1_gamma=3.0, r2_gamma=4.0)
    assert all(isinstance(make_loss(name), GANLoss) and make_loss(name).name == name
               for name in LOSSES)
    with pytest.raises(LossError, match="unknown loss 'x'; choose from wgangp-eps, hinge"):
        make_loss("x")
    with pytest.raises(LossError, match="gp_weight must be >= 0"):
        make_loss("wgangp-eps", gp_weight=-1.0)


def test_wgan_over_fitting_sign_ignores_the_critics_offset() -> None:
    # A critic's logits shifted by a constant mean the same; the sign is read against the mean
    # fake logit (1/3 here, 10 1/3 shifted): signs of [2/3, 8/3, -7/12] either way.
    for shift in (0.0, 10.0):
        _, stats = WGANGPEps().d_main(identity_d, REAL + shift, FAKE + shift)
        assert _close(stats["d_real_sign"], 1 / 3)
    _, hinge = Hinge().d_main(identity_d, REAL + 10.0, FAKE + 10.0)
    assert _close(hinge["d_real_sign"], 1.0)  # a margin loss keeps StyleGAN2-ADA's E[sign(D(x))]


def test_mode_seeking_term_is_small_for_varied_samples_and_large_for_one_image() -> None:
    z = torch.cat([torch.zeros(2, 4), torch.ones(2, 4)])  # |z1 - z2| = 1
    varied = torch.cat([torch.zeros(2, 1, 2, 2), torch.full((2, 1, 2, 2), 2.0)])
    assert _close(mode_seeking_loss(varied, z), 1 / (2.0 + 1e-5))
    collapsed = torch.ones(4, 1, 2, 2)
    assert float(mode_seeking_loss(collapsed, z)) == pytest.approx(1e5)


def _softplus(x: float) -> float:
    return math.log1p(math.exp(x))


def test_rpgan_on_known_logits() -> None:
    # Pairs (real, fake): (1, 0.5), (3, -1.5), (-0.25, 2): differences 0.5, 4.5, -2.25.
    loss, stats = RelativisticPairing().d_main(identity_d, REAL, FAKE)
    assert _close(loss, sum(_softplus(-d) for d in (0.5, 4.5, -2.25)) / 3)
    assert _close(stats["d_real_sign"], 1 / 3)  # signs of the differences
    g, _ = RelativisticPairing().g_main(identity_d, FAKE, None, lambda: REAL.view(-1))
    assert _close(g, sum(_softplus(d) for d in (0.5, 4.5, -2.25)) / 3)
    # Shifting every logit changes nothing: only differences count.
    shifted, _ = RelativisticPairing().d_main(identity_d, REAL + 7.0, FAKE + 7.0)
    assert _close(shifted, loss)
    with pytest.raises(LossError, match="against real images"):
        RelativisticPairing().g_main(identity_d, FAKE)


def test_rpgan_pairs_a_larger_g_batch_with_repeated_reals() -> None:
    reals = torch.tensor([1.0, 2.0, 3.0])
    assert paired(reals, 5).tolist() == [1.0, 2.0, 3.0, 1.0, 2.0]
    assert paired(reals, 2).tolist() == [1.0, 2.0]


def test_r1_and_r2_of_a_linear_d_are_the_closed_form(setup) -> None:
    # The input gradient of w.x + b is w for reals and fakes alike: R1 = R2 = |w|^2.
    D, real, fake = setup
    w_sq = D.w.detach().square().sum()
    term, stats = RelativisticPairing(r1_gamma=2.0, r2_gamma=6.0).d_regulariser(D, real, fake)
    assert _close(stats["r1"], w_sq) and _close(stats["r2"], w_sq)
    assert _close(term, (2.0 / 2 + 6.0 / 2) * w_sq)
    lazy, _ = RelativisticPairing(r1_gamma=2.0, r2_gamma=6.0).d_regulariser(
        D, real, fake, scale=4.0)
    assert _close(lazy, 4.0 * term)
    assert RelativisticPairing(r1_gamma=0.0).regularised
    assert not RelativisticPairing(r1_gamma=0.0, r2_gamma=0.0).regularised


def test_r1_and_r2_are_each_images_own_gradient() -> None:
    """The one pass over reals and fakes gives each set's penalty as its own pass would."""
    torch.manual_seed(0)
    D = AttentionD()
    real, fake = torch.randn(2, 3, 3, 4, 4)
    _, stats = RelativisticPairing().d_regulariser(D, real, fake)
    _, r1_only = LogisticR1().d_regulariser(D, real, fake)
    _, r2_only = LogisticR1().d_regulariser(D, fake, real)
    torch.testing.assert_close(stats["r1"], r1_only["r1"])
    torch.testing.assert_close(stats["r2"], r2_only["r1"])
