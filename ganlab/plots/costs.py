"""Tutorial Figure 16: each game's generator cost against the discriminator's output."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from matplotlib.figure import Figure

from ganlab.losses import LogisticGame, MaxLikelihood, Minimax, NonSaturating
from ganlab.plots.figure import new_figure

__all__ = ["COST_STYLES", "cost_curves", "default_losses"]

COST_STYLES = {
    "Minimax": {"color": "tab:blue", "ls": "-"},
    "Non-saturating heuristic": {"color": "tab:green", "ls": "--"},
    "Maximum likelihood cost": {"color": "tab:red", "ls": "-."},
}


def default_losses() -> dict[str, LogisticGame]:
    """The tutorial's three games, keyed by Figure 16's legend labels."""
    return {
        "Minimax": Minimax(),
        "Non-saturating heuristic": NonSaturating(),
        "Maximum likelihood cost": MaxLikelihood(),
    }


def cost_curves(losses: Mapping[str, LogisticGame] | None = None, n: int = 500) -> Figure:
    """Tutorial Figure 16: each game's generator cost J(G) for one sample, as a function of
    D(G(z)) in (0, 1).

    The curves are computed by the project's own loss classes, each ``loss.g_cost``
    called on the single logit sigmoid^-1(D), so the plot checks the code rather than a
    re-typed formula. It shows why the minimax game learns slowly: its cost is flat where
    D confidently rejects the samples (D(G(z)) near 0), on the left, where the
    non-saturating cost is steep. The maximum-likelihood cost is flat there too and its
    gradient is dominated by samples D already likes. The y axis is clipped to the
    tutorial's [-20, 5].
    """
    if n < 2:
        raise ValueError(f"n={n} must be >= 2")
    losses = default_losses() if losses is None else losses
    d = torch.linspace(0.0, 1.0, n + 2, dtype=torch.float64)[1:-1]
    logits = torch.logit(d)
    fig = new_figure((6.0, 4.5))
    ax = fig.add_subplot()
    with torch.no_grad():
        for i, (label, loss) in enumerate(losses.items()):
            cost = torch.stack([loss.g_cost(a.reshape(1)) for a in logits])
            style = COST_STYLES.get(label, {"color": f"C{i}", "ls": "-"})
            ax.plot(d.numpy(), cost.numpy(), lw=2, label=label, **style)
    ax.axhline(0.0, color="0.75", lw=0.6, zorder=0)
    ax.set_xlim(0.0, 1.0)
    ax.set_ylim(-20.0, 5.0)
    ax.set_xlabel("$D(G(z))$")
    ax.set_ylabel("$J^{(G)}$")
    ax.set_title("Generator cost as a function of the discriminator's output")
    ax.legend(loc="lower left", framealpha=0.9)
    return fig
