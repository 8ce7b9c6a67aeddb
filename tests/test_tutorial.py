"""The NIPS 2016 tutorial's exercises on ganlab's own pieces (docs/TUTORIAL.md).

§8.1: with G frozen, D trained on ``data=gaussian1d`` approaches the optimal discriminator
D*(x) = p_data / (p_data + p_g). §8.3: with D = D*, the maximum-likelihood game's generator
gradient is the gradient of KL(p_data || p_g). Proposition 2 / Theorem 1: a well-trained pair
drives the game's value ``train/value`` to -log 4. (§8.2 is tests/test_xy_game.py.)

The references are closed forms of Gaussians, never ganlab's own D* or KDE.
"""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch

from conftest import compose, run_train
from ganlab.build import build_datamodule, build_gan
from ganlab.plots.toy import plot_1d

# p_data = N(4, 0.5^2) (data=gaussian1d's defaults); the frozen G is affine, G(z) = 3 + 1 z
# with z ~ N(0, 1), so p_g = N(3, 1): overlapping, with D* far from constant
DATA_MEAN, DATA_STD = 4.0, 0.5
G_MEAN, G_STD = 3.0, 1.0
AFFINE_G = ["data=gaussian1d", "arch=mlp", "noise.dim=1", "noise.kind=gaussian",
            "arch.generator.hidden=[]"]  # no hidden layer + linear output: G(z) = w z + b


def normal_pdf(x, mean, std):
    return torch.exp(-0.5 * ((x - mean) / std) ** 2) / (std * math.sqrt(2 * math.pi))


def d_star(x):
    p, q = normal_pdf(x, DATA_MEAN, DATA_STD), normal_pdf(x, G_MEAN, G_STD)
    return p / (p + q)


@pytest.fixture(scope="module")
def trained_pair():
    """ganlab's D (arch=mlp), game cost and data, D trained against a frozen affine G."""
    cfg = compose([*AFFINE_G, "arch.discriminator.hidden=[32,32]", "optim=adam",
                   "optim.lr=3e-3", "seed=0"])
    torch.manual_seed(0)
    model = build_gan(cfg)
    datamodule = build_datamodule(cfg)
    datamodule.setup()
    G, D = model.generator, model.discriminator
    with torch.no_grad():
        G.out.weight.fill_(G_STD)
        G.out.bias.fill_(G_MEAN)
    G.requires_grad_(False)
    untrained = d_grid(D)
    steps, batch = 3000, 1024
    opt = model.optimizer(D.parameters())
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)  # settle at the optimum
    train, g = datamodule.split("train"), torch.Generator().manual_seed(1)
    for _ in range(steps):
        real = train[torch.randint(len(train), (batch,), generator=g)]
        fake = G(model.noise.draw(batch, g))
        loss = model.loss.d_cost(D(real), D(fake))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
    return model, datamodule, untrained


GRID = torch.linspace(0.0, 7.0, 701)[:, None]


def d_grid(D) -> torch.Tensor:
    with torch.no_grad():
        return torch.sigmoid(D(GRID)).reshape(-1)


def errors(d: torch.Tensor) -> tuple[float, float]:
    """Mean |D - D*| under the mixture (p_data + p_g) / 2, and the largest |D - D*| where the
    mixture density is at least 5% of its peak (x in about [1, 5.3])."""
    x = GRID.reshape(-1)
    m = 0.5 * (normal_pdf(x, DATA_MEAN, DATA_STD) + normal_pdf(x, G_MEAN, G_STD))
    err = (d - d_star(x)).abs()
    weighted = float(torch.trapezoid(err * m, x))
    return weighted, float(err[m > 0.05 * m.max()].max())


def test_affine_generator_has_the_known_density(trained_pair):
    model, _, _ = trained_pair
    x = model.generator(model.noise.draw(100_000, torch.Generator().manual_seed(2)))
    assert float(x.mean()) == pytest.approx(G_MEAN, abs=0.02)
    assert float(x.std()) == pytest.approx(G_STD, abs=0.02)


def test_trained_discriminator_approaches_the_optimal_one(trained_pair):
    """Exercise §8.1 / paper Proposition 1. Measured (seed 0): mean error 0.004, max 0.03."""
    model, _, untrained = trained_pair
    weighted, worst = errors(d_grid(model.discriminator))
    assert weighted < 0.015 and worst < 0.08, (weighted, worst)
    # far from it before training: the bound is not met by any D
    assert errors(untrained)[0] > 0.1


def test_figure1_plot_draws_d_on_d_star(trained_pair):
    """The Figure 1 plot (samples callback) draws this D on top of its D*."""
    model, datamodule, _ = trained_pair
    samples = model.generator(model.noise.draw(20_000, torch.Generator().manual_seed(3)))
    fig = plot_1d(datamodule.log_density, samples, model.discriminator,
                  x_range=(1.0, 5.5), n_points=451)
    lines = {line.get_label(): line for ax in fig.axes for line in ax.get_lines()}
    d_line = next(v for k, v in lines.items() if k == "$D(x)$")
    star_line = next(v for k, v in lines.items() if k.startswith("$D^*(x)"))
    x = torch.as_tensor(d_line.get_xdata(), dtype=torch.float64)
    np.testing.assert_allclose(d_line.get_ydata(), d_star(x).numpy(), atol=0.08)
    # the drawn D* estimates p_g by a KDE of the samples: close where both densities have mass
    drawn = np.asarray(star_line.get_ydata())
    central = ((x >= 2.0) & (x <= 5.0)).numpy()
    assert np.abs(drawn - d_star(x).numpy())[central].max() < 0.05


def kl_gaussians(m1, s1, m2, s2):
    """KL(N(m1, s1^2) || N(m2, s2^2)) in closed form."""
    return torch.log(s2 / s1) + (s1**2 + (m1 - m2) ** 2) / (2 * s2**2) - 0.5


@pytest.mark.parametrize("g_mean, g_std", [(3.0, 0.8), (4.5, 0.6)])
def test_max_likelihood_gradient_with_optimal_d_is_the_kl_gradient(g_mean, g_std):
    """Exercise §8.3: with D = D*, E_z grad J(G) = grad KL(p_data || p_g) for ganlab's
    ``MaxLikelihood`` at ``loss.scale=1`` (the tutorial's 1/2 gives half of it).

    G is ganlab's affine generator, G(z) = b + w z, so p_g = N(b, w^2). D* enters through its
    logit a*(x) = log p_data(x) - log p_g(x), held fixed (D does not move with G).
    """
    cfg = compose([*AFFINE_G, "loss=maxlikelihood", "loss.scale=1.0"])
    model = build_gan(cfg).double()
    G = model.generator
    with torch.no_grad():
        G.out.weight.fill_(g_std)
        G.out.bias.fill_(g_mean)
    w, b = G.out.weight, G.out.bias

    def optimal_logit(x):  # log p_data - log p_g at the current, frozen G
        return (torch.log(normal_pdf(x, DATA_MEAN, DATA_STD))
                - torch.log(normal_pdf(x, g_mean, g_std))).reshape(-1)

    n, chunks = 200_000, 10
    g = torch.Generator().manual_seed(0)
    grads = []
    for _ in range(chunks):  # independent Monte Carlo estimates, for a standard error
        z = torch.randn(n, 1, generator=g, dtype=torch.float64)
        G.zero_grad()
        model.loss.g_cost(optimal_logit(G(z))).backward()
        grads.append(torch.stack([b.grad.reshape(()), w.grad.reshape(())]))
    grads = torch.stack(grads)
    estimate, se = grads.mean(0), grads.std(0) / math.sqrt(chunks)

    m2 = torch.tensor(g_mean, dtype=torch.float64, requires_grad=True)
    s2 = torch.tensor(g_std, dtype=torch.float64, requires_grad=True)
    kl = kl_gaussians(torch.tensor(DATA_MEAN, dtype=torch.float64),
                      torch.tensor(DATA_STD, dtype=torch.float64), m2, s2)
    exact = torch.stack(torch.autograd.grad(kl, (m2, s2)))
    assert torch.all((estimate - exact).abs() < 5 * se + 1e-3), (estimate, exact, se)
    assert exact.abs().min() > 0.1  # a real gradient, not 0 = 0

    # the other games' gradients are not KL's: the test can tell them apart
    ns = build_gan(compose([*AFFINE_G, "loss=nonsaturating", "loss.scale=1.0"])).double()
    ns.generator.load_state_dict(G.state_dict())
    ns.generator.zero_grad()
    z = torch.randn(n, 1, generator=g, dtype=torch.float64)
    ns.loss.g_cost(optimal_logit(ns.generator(z))).backward()
    other = torch.stack([ns.generator.out.bias.grad.reshape(()),
                         ns.generator.out.weight.grad.reshape(())])
    assert (other - exact).abs().max() > 0.1


def test_value_of_a_trained_pair_approaches_minus_log_4(tmp_path):
    """Paper Theorem 1 (Proposition 2's fixed point): as p_g -> p_data and D -> 1/2, the
    logged ``train/value`` = E log D(x) + E log(1 - D(G(z))) tends to -log 4.

    Measured (seed 0, 1000 steps): -1.13 at the first log, within 0.02 of -log 4 over the
    last 200 steps. About 12 s.
    """
    run_dir = tmp_path / "run"
    proc = run_train(
        ["data=gaussian1d", "data.n_train=25000", "arch=mlp", "arch.generator.hidden=[16]",
         "arch.discriminator.hidden=[16]", "noise.dim=1", "noise.kind=gaussian", "optim=adam",
         "optim.lr=1e-3", "logger=csv", "callbacks=none", "trainer.max_epochs=4",
         "trainer.limit_train_batches=250", "trainer.log_every_n_steps=25",
         "trainer.enable_progress_bar=false", "seed=0"],
        run_dir,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    with open(run_dir / "csv" / "version_0" / "metrics.csv") as f:
        values = [float(r["train/value"]) for r in csv.DictReader(f) if r.get("train/value")]
    assert len(values) == 40
    assert all(v < 0 for v in values)
    assert values[0] > -math.log(4) + 0.15  # D wins at first: the value is above -log 4
    late = np.array(values[-8:])  # the last 200 steps
    assert np.abs(late + math.log(4)).max() < 0.1, late
