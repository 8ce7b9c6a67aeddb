"""The Parzen protocol's choice of sigma as a picture: validation log-likelihood against sigma."""

from __future__ import annotations

from matplotlib.figure import Figure

from ganlab.evaluation.parzen import ParzenResult

__all__ = ["plot_valid_curve"]


def plot_valid_curve(result: ParzenResult, title: str | None = None) -> Figure:
    """Mean validation log-likelihood against sigma, with the chosen sigma marked."""
    sig, ll = zip(*result.valid_curve, strict=True)
    fig = Figure(figsize=(5, 3.5))
    ax = fig.add_subplot()
    ax.semilogx(sig, ll, "o-", color="tab:blue", label="validation mean log-likelihood")
    ax.axvline(result.sigma, color="tab:red", ls="--", label=f"chosen sigma = {result.sigma:.3g}")
    ax.set_xlabel("sigma")
    ax.set_ylabel("mean log-likelihood (nats)")
    ax.set_title(title or f"Parzen: test {result.test_ll:.1f} ± {result.test_se:.1f}")
    ax.legend(loc="lower center", fontsize=8)
    fig.tight_layout()
    return fig
