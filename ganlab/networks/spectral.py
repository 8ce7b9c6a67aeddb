"""Spectral normalisation of a discriminator (Miyato, Kataoka, Koyama and Yoshida 2018,
"Spectral normalization for generative adversarial networks", arXiv:1802.05957).

Why: a discriminator whose every weight W is used as W / sigma(W), sigma the largest singular
value, has each linear map 1-Lipschitz, so with 1-Lipschitz activations (ReLU, LeakyReLU,
maxout) D is 1-Lipschitz as a whole; its gradients, the signal G learns from, can neither
explode nor vanish as D grows sharp, without a penalty term or a second backward pass.
sigma is estimated by power iteration: vectors u and v (buffers, saved in checkpoints) move
one step towards W's top singular vectors at every training-mode forward pass, and
sigma = u^T W v. An eval-mode pass reuses the stored u and v.

How: :func:`torch.nn.utils.parametrizations.spectral_norm` on each layer, as a
parametrisation (PyTorch's own power iteration, one step per pass as in the paper), so the
normalised weight works everywhere a plain one does: ``state_dict`` (the raw weight as
``parametrizations.weight.original``, u and v as ``..._u``/``..._v``),
``torch.func.functional_call`` (the unrolled look-ahead), the meta device (the config check).

What is normalised: the weight of every ``Linear``, ``Conv1d/2d/3d``, ``ConvTranspose1d/2d/3d``
and ``Embedding`` (the projection discriminator's class embedding, as SNGAN normalises
it), wherever it sits in D (inside conditional and packing wrappers). Parameters with fewer
than two dimensions are left as they are: biases, and batch norm's per-channel gain and
shift (DCGAN's D has batch norm; the paper's SN discriminators have none, and a BN gain can
still scale D up).

What is refused (:class:`~ganlab.errors.ConfigError`, one line): a D with no such layer, a
layer whose weight is reparametrised already (weight normalisation, g * v / ||v||: the two
would fight over the weight's scale), and any other parameter of two or more dimensions
(e.g. minibatch features' T). Each of those is a weight that would otherwise be silently
left unnormalised, and D would not be what ``spectral_norm=true`` promises.
"""

from __future__ import annotations

from typing import Any

from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import spectral_norm

from ganlab.errors import ConfigError
from ganlab.networks.minibatch import OPTION as MINIBATCH_OPTION
from ganlab.networks.minibatch import MinibatchFeatures
from ganlab.networks.parametrized import picklable

#: the option, as a user writes it
OPTION = "arch.discriminator.spectral_norm"
#: the layers whose ``weight`` is normalised
LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
          nn.ConvTranspose3d, nn.Embedding)
#: what to do about a weight of another kind, by the module that holds it
ADVICE = {MinibatchFeatures: f"set {MINIBATCH_OPTION}=null or {OPTION}=false"}


def requested(value: Any) -> bool:
    """The setting as a bool (absent: false); one-line :class:`ConfigError` for a non-bool."""
    if value is None or isinstance(value, bool):
        return bool(value)
    raise ConfigError(f"{OPTION}={value} is not allowed: it must be true or false")


def apply_spectral_norm(net: nn.Module, owner: str | None = None) -> list[str]:
    """Spectral-normalise, in place, the weight of every layer of ``net`` that is one of
    :data:`LAYERS`; return their names. ``owner`` names the network in messages (default:
    its class). Raises :class:`ConfigError` (module docstring) before changing anything."""
    owner = owner or type(net).__name__
    layers = []
    for name, module in net.named_modules():
        if isinstance(module, LAYERS):
            if parametrize.is_parametrized(module, "weight"):
                how = type(module.parametrizations.weight[0]).__name__.strip("_")
                raise ConfigError(
                    f"{OPTION}=true is not supported by {owner}: the weight of its layer {name} "
                    f"is reparametrised already ({how}; arch.discriminator.weight_norm=true "
                    f"makes it g * v / ||v||); set arch.discriminator.weight_norm=false or "
                    f"{OPTION}=false")
            layers.append((name, module))
            continue
        for pname, p in module.named_parameters(recurse=False):
            if p.dim() >= 2:
                where = f"{name}.{pname}" if name else pname
                advice = ADVICE.get(type(module), f"use another arch or {OPTION}=false")
                raise ConfigError(
                    f"{OPTION}=true is not supported by {owner}: its weight {where} "
                    f"({type(module).__name__}, shape {list(p.shape)}) is not a Linear, Conv "
                    f"or Embedding layer's and would stay unnormalised; {advice}")
    if not layers:
        raise ConfigError(
            f"{OPTION}=true is not supported by {owner}: it has no Linear, Conv or Embedding "
            f"layer whose weight could be normalised; use another arch or {OPTION}=false")
    for _, module in layers:
        picklable(spectral_norm(module))
    return [name for name, _ in layers]
