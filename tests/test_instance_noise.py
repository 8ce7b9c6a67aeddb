"""Instance noise (ganlab/networks/instance_noise.py): the wrapper adds N(0, std_t^2) noise to
D's inputs in training only, from torch's global stream, annealed by the training step the GAN
module hands it; it passes everything else through; it is the last wrapper of D when on and
absent when off; and a run with it resumes bit for bit."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from conftest import assert_one_line_error, compose, fit_model, tiny_gan
from ganlab.build import build_networks
from ganlab.config.rules import check_config
from ganlab.errors import ConfigError
from ganlab.networks.base import forward_accepts, step_hooks
from ganlab.networks.conditioning import AuxiliaryClassifier, ConcatDiscriminator
from ganlab.networks.instance_noise import InstanceNoise, with_instance_noise
from ganlab.networks.mlp import MLPDiscriminator
from ganlab.run.train import TrainingInterrupted, train


class Echo(nn.Module):
    """Returns what it was given, so the test sees exactly what reached D."""

    def forward(self, x, y=None, features=False):
        return x, y, features


def test_noise_is_std_times_a_draw_of_the_global_stream_in_training_only():
    d = InstanceNoise(Echo(), std=0.5)
    x, y = torch.zeros(4, 3), torch.tensor([0, 1, 2, 3])
    torch.manual_seed(11)
    got, got_y, feats = d(x, y, features=True)
    torch.manual_seed(11)
    assert torch.equal(got, 0.5 * torch.randn(4, 3))  # the global generator: checkpointed
    assert got_y is y and feats is True  # the other arguments pass untouched
    d.eval()
    assert torch.equal(d(x)[0], x)  # samples, figures and evaluation see clean inputs


@pytest.mark.parametrize("step, std", [(0, 0.8), (25, 0.6), (100, 0.0), (150, 0.0)])
def test_the_std_falls_linearly_to_zero_over_anneal_steps(step, std):
    d = InstanceNoise(Echo(), std=0.8, anneal_steps=100)
    (hook,) = step_hooks(nn.Linear(1, 1), d)  # only networks that change with the step
    hook(step)
    assert d.current_std == pytest.approx(std)
    if std == 0.0:  # no draw at all: the stream is left as it was
        state = torch.get_rng_state()
        assert torch.equal(d(torch.ones(2, 2))[0], torch.ones(2, 2))
        assert torch.equal(torch.get_rng_state(), state)


def test_the_wrapper_declares_what_the_wrapped_discriminator_declares():
    base = MLPDiscriminator(shape=[2 + 3], hidden=[4])
    concat = InstanceNoise(ConcatDiscriminator(base, 3), std=0.1)
    assert concat.takes_labels and concat.num_classes == 3 and concat.flat_input is False
    assert not concat.predicts_classes and not concat.semi_supervised
    aux = InstanceNoise(AuxiliaryClassifier(MLPDiscriminator(shape=[2], hidden=[4]), 3), 0.1)
    assert aux.predicts_classes and not aux.takes_labels
    assert forward_accepts(aux, "classes") and forward_accepts(aux, "features")
    plain = InstanceNoise(MLPDiscriminator(shape=[2], hidden=[4]), 0.1)
    assert not forward_accepts(plain, "classes") and plain.per_example
    assert plain.init_from_data == plain.inner.init_from_data
    assert InstanceNoise(Echo(), 0.1).init_from_data is None  # none where D has none
    logits, classes = aux(torch.zeros(5, 2), None, classes=True)
    assert logits.shape == (5,) and classes.shape == (5, 3)


def test_off_means_unwrapped_and_bad_settings_are_refused():
    d = Echo()
    assert with_instance_noise(d, 0.0, 50) is d
    with pytest.raises(ConfigError, match=r"^instance_noise.std=-1 is not allowed"):
        with_instance_noise(d, -1)
    with pytest.raises(ConfigError, match=r"^instance_noise.anneal_steps=1.5 is not allowed"):
        with_instance_noise(d, 0.1, 1.5)


RING = ["debug=tiny", "data=ring", "data.n_train=200", "data.batch_size=20", "noise.dim=4"]


def test_the_run_wraps_d_last_and_only_when_on():
    plain_g, plain_d = build_networks(compose([*RING, "condition=cgan"]))
    torch.manual_seed(0)
    g, d = build_networks(compose([*RING, "condition=cgan", "instance_noise.std=0.3",
                                   "instance_noise.anneal_steps=40"]))
    assert isinstance(d, InstanceNoise) and isinstance(d.inner, ConcatDiscriminator)
    assert (d.std, d.anneal_steps) == (0.3, 40)
    assert d.inner.state_dict().keys() == plain_d.state_dict().keys()
    assert not isinstance(plain_d, InstanceNoise)  # off: the checkpoints of before
    check_config(compose([*RING, "condition=cgan", "instance_noise.std=0.3"]))  # dry build


def test_a_negative_std_in_the_config_is_one_line():
    with pytest.raises(ConfigError) as err:
        check_config(compose([*RING, "instance_noise.std=-0.5"]))
    assert_one_line_error(err.value, "instance_noise.std=-0.5", ">= 0",
                          start="instance_noise.std=-0.5 is not allowed")


def test_the_module_hands_d_the_steps_done_before_every_step():
    seen = []

    class Spy(InstanceNoise):
        def on_training_step(self, step):
            seen.append(step)
            super().on_training_step(step)

    model, data = tiny_gan(compose([*RING, "k=2", "instance_noise.std=0.2",
                                    "instance_noise.anneal_steps=8", "callbacks=none"]))
    model.discriminator = Spy(model.discriminator.inner, 0.2, 8)
    fit_model(model, data, steps=4)
    assert seen == [0, 1, 2, 3]  # the count of training steps, k + 1 = 3 updates each
    assert model.discriminator.current_std == pytest.approx(0.2 * (1 - 3 / 8))  # the last step's


def _cfg(run, *extra, callback=None):
    """The ring run with annealed instance noise; ``callback``: one of test_regularizers'
    resume helpers (``StopAfter``, ``CountSteps``), by its ``_target_``."""
    from omegaconf import open_dict

    cfg = compose([*RING, "instance_noise.std=0.5", "instance_noise.anneal_steps=8",
                   "trainer.max_epochs=1", *extra,
                   *(f"callbacks.{name}=null" for name in (
                       "parzen", "metrics", "figures", "samples", "progress_bar"))], run)
    if callback is not None:
        with open_dict(cfg):
            cfg.callbacks["extra"] = callback
    return cfg


def test_a_run_with_annealed_instance_noise_resumes_bit_for_bit(tmp_path):
    """Stopped by Ctrl-C after 6 of 10 steps (mid-epoch, mid-anneal: 8 steps) and resumed, it
    ends with the weights of the run never stopped: the noise and its std come back from the
    checkpoint (torch's stream, the trainer's step count)."""
    straight, split = tmp_path / "straight", tmp_path / "split"
    train(_cfg(straight))
    with pytest.raises(TrainingInterrupted):
        train(_cfg(split, callback={"_target_": "test_regularizers.StopAfter", "batches": 6}))
    count = split / "steps.txt"
    train(_cfg(split, "ckpt_path=last",
               callback={"_target_": "test_regularizers.CountSteps", "path": str(count)}))
    assert count.read_text() == "4"  # resumed, not restarted
    a = torch.load(straight / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    b = torch.load(split / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert "discriminator.inner.net.1.weight" in a
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)

