"""The remedy config group: each file composes with an experiment and builds its remedy."""

from pathlib import Path

import pytest

from conftest import compose
from ganlab.build import build_gan
from ganlab.config.rules import check_config
from ganlab.losses import FeatureMatching
from ganlab.networks.minibatch import MinibatchFeatures
from ganlab.networks.packing import PackedDiscriminator
from ganlab.training.rules import Alternating, Simultaneous, Unrolled

REMEDIES = sorted(p.stem for p in (Path(__file__).parents[1] / "conf" / "remedy").glob("*.yaml"))


def test_the_table_rows_exist():
    # the mode-collapse table's rows: plain, minibatch features, PacGAN2/4, unrolled K=5,
    # feature matching, label smoothing, k=5 (and the alternating control for the last ones)
    assert set(REMEDIES) == {"none", "alternating", "minibatch", "pack2", "pack4", "unrolled5",
                             "feature_matching", "label_smoothing", "k5"}


@pytest.mark.parametrize("data", ["ring", "grid"])
@pytest.mark.parametrize("remedy", REMEDIES)
def test_remedy_composes_with_the_pacgan_presets(remedy, data, tmp_path):
    cfg = compose([f"experiment=pacgan_{data}", f"remedy={remedy}"], tmp_path)
    check_config(cfg)
    gan = build_gan(cfg)
    d, rule = gan.discriminator, gan.update_rule()
    packed = isinstance(d, PackedDiscriminator)
    has_mbf = any(isinstance(m, MinibatchFeatures) for m in d.modules())
    assert packed == remedy.startswith("pack")
    if packed:
        assert d.m == int(remedy[-1])
    assert has_mbf == (remedy == "minibatch")
    assert isinstance(gan.loss, FeatureMatching) == (remedy == "feature_matching")
    assert gan.loss.real_label == (0.9 if remedy == "label_smoothing" else 1.0)
    assert gan.k == (5 if remedy == "k5" else 1)
    expected_rule = {"unrolled5": Unrolled, "alternating": Alternating, "k5": Alternating}
    assert type(rule) is expected_rule.get(remedy, Simultaneous)
    if remedy == "unrolled5":
        assert cfg.unroll == 5
    # everything else is the experiment's: the published optimiser and data
    assert cfg.optim.lr == 1e-4 and cfg.data.batch_size == 100
