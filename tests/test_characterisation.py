"""Characterisation: a short run of each preset family ends with the weights it ended with
when these checksums were recorded, so restructuring the code provably changes no training.

Each family runs through ``ganlab.run.train.train`` as ``scripts/train.py`` would (the preset's
own networks, shrunk to a few units so a run takes seconds, on a small MNIST-format file set
written here, or on the ring), and its final checkpoint's state dict (G, D, the averaged G,
the fixed noise) is hashed byte for byte, keys included.

Float results can differ between CPUs (vector widths, BLAS kernels) and thread counts. The
record therefore holds a fingerprint of this platform's arithmetic on the operations the
networks use and of torch's thread count: where
the fingerprint matches, the weights must match bit for bit; elsewhere the weights' sums are
compared to 1e-4 (a few training steps move them far more than rounding does) and the test
says so. ``GANLAB_RECORD_CHARACTERISATION=1 pytest tests/test_characterisation.py`` rewrites
the record (only ever on the commit whose behaviour is the reference).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest
import torch

from conftest import compose

RECORD = Path(__file__).with_name("characterisation.json")
RECORDING = os.environ.get("GANLAB_RECORD_CHARACTERISATION") == "1"

#: a short run: a few steps, nothing drawn or scored (those never move a weight)
SHORT = [
    "logger=none", "trainer.enable_progress_bar=false", "+trainer.enable_model_summary=false",
    *(f"callbacks.{name}=null" for name in ("parzen", "metrics", "figures", "samples",
                                             "throughput", "progress_bar")),
    "trainer.log_every_n_steps=2",
    "trainer.max_epochs=2", "trainer.limit_train_batches=4",
]
SMALL_MNIST = ["data.download=false", "data.batch_size=20"]
MLP = ["arch.generator.hidden=[24]", "arch.discriminator.hidden=[24]"]
TOY = ["data=ring", "data.n_train=400", "data.batch_size=20", "arch=mlp", "optim=sgd", *MLP]

FAMILIES: dict[str, list[str]] = {
    # the paper: MLP G with marginal bias, maxout D with dropout, simultaneous update,
    # the Pylearn2 schedules, the uniform G average
    "paper_mnist": ["experiment=paper_mnist", *SMALL_MNIST, "arch.generator.hidden=[32,32]",
                    "arch.discriminator.units=[16,16]"],
    "paper_mnist_alternating_k2": ["experiment=paper_mnist", *SMALL_MNIST, "update=alternating",
                                   "k=2", "loss.d_scale=1.0", "arch.generator.hidden=[32]",
                                   "arch.discriminator.units=[16]"],
    "dcgan_mnist": ["experiment=dcgan_mnist", *SMALL_MNIST, "arch.generator.base_channels=4",
                    "arch.discriminator.base_channels=4"],
    "dcgan_virtual_bn_ema": ["experiment=dcgan_mnist", *SMALL_MNIST, "average=ema",
                             "arch.generator.norm=virtual", "arch.generator.reference_size=8",
                             "arch.generator.base_channels=4",
                             "arch.discriminator.base_channels=4"],
    "pacgan_ring_pack2": ["experiment=pacgan_ring", "remedy=pack2", "data.n_train=400",
                          "data.batch_size=10", "arch.generator.hidden=[16,16]",
                          "arch.discriminator.units=[16,16]"],
    "pack3_examples": [*TOY, "pack=3", "data.batch_size=21"],
    "cgan_dcgan": ["experiment=dcgan_mnist", "condition=cgan", *SMALL_MNIST,
                   "arch.generator.base_channels=4", "arch.discriminator.base_channels=4"],
    "cgan_mlp_embedding": [*TOY, "condition=cgan", "condition.generator=embedding",
                           "condition.embed_dim=3"],
    "acgan_full": [*TOY, "condition=acgan", "condition.generator=onehot",
                   "update=simultaneous"],
    "semisup": ["experiment=semisup_mnist", *SMALL_MNIST, "data.n_labels=30",
                "arch.generator.hidden=[24]", "arch.discriminator.hidden=[24,16]"],
    "unrolled": [*TOY, "remedy=unrolled5", "optim=adam", "unroll=2"],
    "unrolled_feature_matching": [*TOY, "unroll=2", "loss=feature_matching"],
    "simultaneous_minimax": [*TOY, "update=simultaneous", "loss=minimax"],
    "minibatch_features_k3": [*TOY, "remedy=minibatch", "k=3",
                              "arch.discriminator.minibatch_features.kernels=5"],
    "label_smoothing_maxlikelihood": [*TOY, "loss=maxlikelihood", "loss.real_label=0.9",
                                      "steps_per_batch=2", "average=uniform"],
}

#: families that read MNIST files (a small MNIST-format set is written for them)
NEEDS_MNIST = {name for name, args in FAMILIES.items() if "data=ring" not in args
               and not any(a.startswith("experiment=pacgan") for a in args)}


def fingerprint() -> str:
    """A hash of this platform's float arithmetic on the operations the families use, and of
    torch's CPU thread count: the probes are too small to be split across threads, the
    networks' batch-norm and convolution reductions are not, and their order follows the
    count (one thread instead of two changes the final weights of several families)."""
    g = torch.Generator().manual_seed(0)
    out = []
    x = torch.randn(37, 53, generator=g, requires_grad=True)
    w = torch.randn(53, 29, generator=g)
    y = torch.nn.functional.softplus(x @ w)
    y.sum().backward()
    out += [y, x.grad]
    img = torch.randn(4, 3, 16, 16, generator=g, requires_grad=True)
    k = torch.randn(8, 3, 4, 4, generator=g)
    c = torch.nn.functional.conv2d(img, k, stride=2, padding=1)
    t = torch.nn.functional.conv_transpose2d(c, k, stride=2, padding=1)
    bn = torch.nn.functional.batch_norm(t, None, None, training=True)
    bn.square().sum().backward()
    out += [c, t, bn, img.grad]
    digest = hashlib.sha256(f"threads={torch.get_num_threads()}".encode())
    for tensor in out:
        digest.update(tensor.detach().contiguous().numpy().tobytes())
    return digest.hexdigest()


def weights_record(state_dict: dict[str, torch.Tensor]) -> dict:
    digest = hashlib.sha256()
    total = absolute = 0.0
    for key in sorted(state_dict):
        value = state_dict[key]
        digest.update(key.encode())
        digest.update(value.detach().contiguous().cpu().numpy().tobytes())
        if value.is_floating_point():
            total += float(value.double().sum())
            absolute += float(value.double().abs().sum())
    return {"sha256": digest.hexdigest(), "sum": total, "abs_sum": absolute}


def run_family(name: str, root: Path, run_dir: Path) -> dict:
    from ganlab.run.train import train

    args = [*FAMILIES[name], *SHORT, "seed=3"]
    if name in NEEDS_MNIST:
        args.append(f"data.root={root}")
    train(compose(args, run_dir))
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu",
                      weights_only=True)
    return weights_record(ckpt["state_dict"])


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_short_run_ends_with_the_recorded_weights(name, small_mnist, tmp_path):
    got = run_family(name, small_mnist, tmp_path / "run")
    if RECORDING:
        record = json.loads(RECORD.read_text()) if RECORD.is_file() else {}
        record["platform"] = fingerprint()
        record.setdefault("runs", {})[name] = got
        RECORD.write_text(json.dumps(record, indent=1, sort_keys=True) + "\n")
        return
    record = json.loads(RECORD.read_text())
    want = record["runs"][name]
    if record["platform"] == fingerprint():
        assert got["sha256"] == want["sha256"], (
            f"{name}: the final weights differ from the recorded ones (sum {got['sum']!r} "
            f"against {want['sum']!r}): training changed")
    else:  # another CPU's rounding: the weights agree to far better than training moves them
        assert got["sum"] == pytest.approx(want["sum"], rel=1e-4, abs=1e-3)
        assert got["abs_sum"] == pytest.approx(want["abs_sum"], rel=1e-4)


def test_every_family_is_recorded():
    if RECORDING:
        pytest.skip("recording")
    assert set(json.loads(RECORD.read_text())["runs"]) == set(FAMILIES)
