"""D's cost and G's cost, each written once for every update rule.

:class:`DiscriminatorCost` is the one D cost: the game's ``d_cost`` on D's logits, AC-GAN's
class term when D predicts classes, and each regulariser's term (``regularizer=[...]``,
:mod:`ganlab.regularizers`), in that order. Alternating, simultaneous, unrolled (its
look-ahead) and semi-supervised training all call it. :class:`GeneratorCost` is G's: the
game's ``g_cost`` on D's logits or, for games that read them, D's features, plus AC-GAN's
class term for a conditional G. Both are in float32 whatever the forward pass ran in
(``trainer.precision``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from ganlab.errors import ConfigError
from ganlab.losses import Game
from ganlab.training.labels import LabelPlan

#: a D regulariser: ``(d, real, y_real, fake, y_fake) -> Tensor | None``, ``d(x, y)`` D's
#: logits; None adds nothing this step
Regularizer = Callable[..., Tensor]


@dataclass
class Judgement:
    """What D said of one minibatch: logits, and class logits / features where asked."""

    logits: Tensor
    classes: Tensor | None = None
    features: Tensor | None = None


def judgement(out: Any, classes: bool = False, features: bool = False) -> Judgement:
    """D's output ``logits`` or ``(logits, [class_logits], [features])`` as a Judgement."""
    if not (classes or features):
        return Judgement(out)
    return Judgement(out[0], out[1] if classes else None, out[-1] if features else None)


def no_features(discriminator: Any) -> str:
    name = getattr(discriminator, "__name__", None) or type(discriminator).__name__
    return (
        f"loss=feature_matching needs a discriminator that returns its features "
        f"(d(x, features=True) -> (logits, features), ganlab.networks.base.Discriminator); "
        f"{name} does not: pick another arch, or another loss"
    )


def _with_features(out: Any, d: Any) -> Any:
    if not isinstance(out, tuple):  # a D that accepts features=True and ignores it
        raise ConfigError(no_features(d))
    return out


@dataclass
class DOutcome:
    """D's cost and what it was computed from (statistics read them on logged steps)."""

    loss: Tensor
    real: Judgement | None
    fake: Judgement | None
    game: Tensor | None
    terms: dict[str, Tensor] = field(default_factory=dict)


class DiscriminatorCost:
    """``game_weight * game.d_cost + class term + sum of regularisers`` (+ a rule's own term).

    Args:
        game: the game (:mod:`ganlab.losses`).
        plan: which networks read classes (:mod:`ganlab.training.labels`).
        regularizers: named D regularisers, each added to D's cost.
        game_weight: factor of the game's cost (the semi-supervised unlabelled weight).
    """

    def __init__(self, game: Game, plan: LabelPlan,
                 regularizers: Sequence[tuple[str, Regularizer]] = (),
                 game_weight: float = 1.0) -> None:
        self.game = game
        self.plan = plan
        self.classes = plan.class_cost
        self.regularizers = list(regularizers)
        self.game_weight = float(game_weight)

    def judge(self, d: Callable[..., Any], real: Tensor, y_real: Tensor | None, fake: Tensor,
              y_fake: Tensor | None) -> tuple[Judgement, Judgement]:
        """D on a real and a generated minibatch, with class logits where the cost reads them."""
        if self.classes is None:
            return (Judgement(self.plan.judge(d, real, y_real)),
                    Judgement(self.plan.judge(d, fake, y_fake)))
        real_out = judgement(self.plan.judge(d, real, y_real, classes=True), classes=True)
        fakes = self.classes.fakes
        out = self.plan.judge(d, fake, y_fake, **({"classes": True} if fakes else {}))
        return real_out, judgement(out, classes=fakes)

    def __call__(self, d: Callable[..., Any], real: Tensor, y_real: Tensor | None,
                 fake: Tensor | None, y_fake: Tensor | None,
                 extra: Tensor | None = None) -> DOutcome:
        """D's cost through ``d`` (a training network, or the look-ahead's functional D);
        ``extra`` (a rule's own term, computed first) is added in front."""
        if fake is None:  # no game term: D trains on ``extra`` (and the regularisers) alone
            return self.total(d, None, None, real, y_real, fake, y_fake, extra)
        real_out, fake_out = self.judge(d, real, y_real, fake, y_fake)
        return self.total(d, real_out, fake_out, real, y_real, fake, y_fake, extra)

    def total(self, d: Callable[..., Any], real_out: Judgement | None,
              fake_out: Judgement | None,
              real: Tensor, y_real: Tensor | None, fake: Tensor | None, y_fake: Tensor | None,
              extra: Tensor | None = None) -> DOutcome:
        """D's cost from D's outputs already computed (the simultaneous update shares them
        with G's cost)."""
        terms: dict[str, Tensor] = {}
        game = loss = None
        if fake_out is not None:
            game = self.game.d_cost(real_out.logits.float(), fake_out.logits.float())
            loss = game if self.game_weight == 1.0 else self.game_weight * game
        if extra is not None:
            loss = extra if loss is None else extra + loss
        if self.classes is not None:
            fake_classes = (fake_out.classes.float()
                            if self.classes.fakes and fake_out is not None else None)
            cost = self.classes.d_cost(real_out.classes.float(), y_real, fake_classes, y_fake)
            terms["loss_class_d"] = cost
            loss = loss + cost
        if self.regularizers:
            def logits(x: Tensor, y: Tensor | None) -> Tensor:
                return self.plan.judge(d, x, y)

            for name, regularizer in self.regularizers:
                term = regularizer(logits, real, y_real, fake, y_fake)
                if term is None:  # a lazy penalty's off step, or nothing to penalise
                    continue
                terms[f"reg_{name}"] = term
                loss = loss + term
        return DOutcome(loss=loss, real=real_out, fake=fake_out, game=game, terms=terms)

    def stats(self, outcome: DOutcome) -> dict[str, Tensor]:
        """D's loss, the game's statistics and every term, for logging."""
        out = {"loss_d": outcome.loss.detach()}
        if outcome.fake is not None:
            out.update(self.game.stats(outcome.real.logits, outcome.fake.logits))
        out.update({k: v.detach() for k, v in outcome.terms.items()})
        return out


class GeneratorCost:
    """G's cost from D's view of G's samples: the game's ``g_cost`` on D's logits (or on D's
    features against a real minibatch's, for games that read them), plus AC-GAN's class term
    on the samples when G is conditional."""

    def __init__(self, game: Game, plan: LabelPlan) -> None:
        self.game = game
        self.plan = plan
        self.features = bool(getattr(game, "uses_features", False))
        classes = plan.class_cost
        self.classes = classes if classes is not None and classes.fakes else None

    def __call__(self, d: Callable[..., Any], fake: Tensor, y_fake: Tensor | None,
                 real: Tensor | None = None, y_real: Tensor | None = None) -> Tensor:
        """G's cost through ``d``; ``real``/``y_real`` are read by feature games only (their
        features from the same D, without gradient)."""
        judge = self.plan.judge
        if not self.features:
            if self.classes is None:
                return self.game.g_cost(judge(d, fake, y_fake).float())
            logits, classes = judge(d, fake, y_fake, classes=True)
            return (self.game.g_cost(logits.float())
                    + self.classes.g_cost(classes.float(), y_fake))
        if self.classes is None:
            _, fake_features = _with_features(judge(d, fake, y_fake, features=True), d)
            cost = None
        else:
            _, classes, fake_features = judge(d, fake, y_fake, features=True, classes=True)
            cost = self.classes.g_cost(classes.float(), y_fake)
        with torch.no_grad():
            _, real_features = judge(d, real, y_real, features=True)
        fm = self.game.g_cost(fake_features.float(), real_features.float())
        return fm if cost is None else fm + cost

    def from_outputs(self, fake_out: Judgement, real_out: Judgement,
                     y_fake: Tensor | None) -> Tensor:
        """G's cost from D's outputs already computed (the simultaneous update); the real
        features are detached."""
        if self.features:
            loss = self.game.g_cost(fake_out.features.float(), real_out.features.detach().float())
        else:
            loss = self.game.g_cost(fake_out.logits.float())
        if self.classes is not None:
            loss = loss + self.classes.g_cost(fake_out.classes.float(), y_fake)
        return loss
