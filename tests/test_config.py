"""Every config combination composes and builds; impossible pairs are refused up front.

Nothing here lists the options of a group: a new loss, architecture or dataset YAML is
picked up by the glob and tested as it is.
"""

import contextlib
import functools
import itertools

import pytest
import torch
from hydra.errors import ConfigCompositionException

from conftest import CONF, assert_one_line_error, compose
from ganlab.build import build_datamodule, build_gan
from ganlab.config.rules import check_config
from ganlab.errors import ConfigError
from ganlab.losses import Game
from ganlab.training.module import GAN

DATA = sorted(p.stem for p in (CONF / "data").glob("*.yaml"))
ARCH = sorted(p.stem for p in (CONF / "arch").glob("*.yaml"))
LOSS = sorted(p.stem for p in (CONF / "loss").glob("*.yaml"))
OPTIM = sorted(p.stem for p in (CONF / "optim").glob("*.yaml"))
#: networks above this size run on the meta device only (the paper's CIFAR/TFD nets)
RUN_LIMIT = 5_000_000


@functools.cache
def pair_config(data: str, arch: str):
    """The composed config of ``data`` x ``arch`` (composed once: Hydra takes ~0.2 s a call)."""
    return compose([f"data={data}", f"arch={arch}", "optim=adam"])


@functools.cache
def refusal(data: str, arch: str) -> str | None:
    """Why the validator refuses ``data`` x ``arch`` before a run, or None if it accepts the pair
    (it builds both networks on the meta device: ganlab.build.dry_build). The test below builds and
    runs every accepted pair for real, so a pair the validator wrongly accepts fails there.
    Cached: the pairs are judged once, when a test first asks, never while pytest collects."""
    try:
        check_config(pair_config(data, arch))
    except ConfigError as err:
        return str(err)
    return None


def test_every_dataset_and_architecture_has_a_partner():
    pairs = [pair for pair in itertools.product(DATA, ARCH) if refusal(*pair) is None]
    assert {d for d, _ in pairs} == set(DATA)
    assert {a for _, a in pairs} == set(ARCH)


@pytest.mark.parametrize("data, arch", itertools.product(DATA, ARCH))
def test_every_data_arch_combination_instantiates_or_is_refused_in_one_line(data, arch):
    message = refusal(data, arch)
    if message is not None:  # refused up front, naming the architecture that cannot take it
        assert_one_line_error(message, f"arch={arch}", start="data.shape=")
        return
    cfg = pair_config(data, arch)
    datamodule = build_datamodule(cfg)  # constructing reads no files
    assert datamodule.shape == tuple(cfg.data.shape)
    with torch.device("meta"):
        big = sum(p.numel() for p in build_gan(cfg).parameters()) > RUN_LIMIT
    # the paper's big nets run on the meta device (shapes only), the others for real
    with torch.device("meta") if big else contextlib.nullcontext():
        model = build_gan(cfg)
        assert isinstance(model, GAN)
        model.eval()
        x = model.generator(torch.randn(2, cfg.noise.dim))
        assert x.shape == (2, *datamodule.shape)
        assert model.discriminator(x).shape == (2,)


@pytest.mark.parametrize("loss", LOSS)
def test_every_game_builds_a_gan(loss):
    """The networks do not depend on the game (a game that reads D's features is checked
    against the D by the config's rules), so each game is built once, on the default run."""
    model = build_gan(compose([f"loss={loss}"]))
    assert isinstance(model.loss, Game)
    assert type(model.loss).__name__ == compose([f"loss={loss}"]).loss._target_.rsplit(".", 1)[1]


def test_top_level_options():
    cfg = compose(["k=5", "seed=3", "optim.lr=0.01", "data.root=/elsewhere", "data.download=false"])
    model = build_gan(cfg)
    dm = build_datamodule(cfg)
    assert model.k == 5 and model.seed == 3
    assert dm.batches_per_step == 5 and dm.shuffle_seed == 3  # k and seed reach both
    opt = model.configure_optimizers()[0]["optimizer"]
    assert opt.param_groups[0]["lr"] == 0.01
    assert dm.root == "/elsewhere" and dm.download is False


def test_k_lives_in_one_place():
    """The model: node that re-wired every group is gone; model.k=3 cannot desync from the
    data's draws per step, and the stored config holds the architecture once."""
    with pytest.raises(ConfigCompositionException, match="model"):
        compose(["model.k=3"])
    cfg = compose(["k=3"])
    assert build_gan(cfg).k == build_datamodule(cfg).batches_per_step == 3
    stored = build_gan(cfg).config
    assert "model" not in stored and "batches_per_step" not in stored["data"]
    assert stored["arch"]["generator"]["_target_"] == cfg.arch.generator._target_


@pytest.mark.parametrize("override", ["loss=nosuch", "data=nosuch", "arch=nosuch"])
def test_unknown_option_lists_the_choices(override):
    group = override.split("=")[0]
    with pytest.raises(ConfigCompositionException) as err:
        compose([override])
    message = str(err.value)
    assert f"Could not find '{group}/nosuch'" in message
    expected = {"loss": LOSS, "data": DATA, "arch": ARCH}[group]
    for option in expected:
        assert option in message


def test_debug_presets_compose_with_any_callbacks():
    """debug=smoke sets Parzen values; with callbacks=none they must not become a callback."""
    from ganlab.build import build_callbacks

    assert build_callbacks(compose(["debug=smoke", "callbacks=none"])) == []
    names = {type(c).__name__ for c in build_callbacks(compose(["debug=smoke"]))}
    assert "ParzenEvaluation" in names and "MomentumRamp" not in names  # the module brings it
