"""Checkpoint files: a real one loads and fits its model; a missing, corrupt, foreign or
malicious file, or one from another architecture, is refused in one line naming it.

Docs: docs/RELIABILITY.md. The checkpoint is one epoch of the ring toy, trained in-process.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path

import pytest
import torch

from conftest import (
    STEPS_PER_EPOCH,
    assert_one_line_error,
    toy_cfg,
)
from ganlab.build import build_gan
from ganlab.run.checkpoints import CheckpointError, check_compatible, load_checkpoint
from ganlab.run.train import train


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A real checkpoint: one epoch of the ring toy."""
    run_dir = tmp_path_factory.mktemp("trained")
    train(toy_cfg(run_dir, "trainer.max_epochs=1"))
    return run_dir / "checkpoints" / "last.ckpt"


def test_checkpoint_loads_and_fits_its_model(trained):
    ckpt = load_checkpoint(trained)
    assert ckpt["global_step"] == STEPS_PER_EPOCH
    model = build_gan(toy_cfg(Path("unused")))
    check_compatible(ckpt, model)


def test_missing_corrupt_and_foreign_checkpoints(trained, tmp_path):
    cases = {
        "missing": (tmp_path / "nosuch.ckpt", "does not exist"),
        "truncated": (tmp_path / "truncated.ckpt", "is corrupt or truncated"),
        "junk": (tmp_path / "junk.ckpt", "is corrupt or truncated"),
        "foreign": (tmp_path / "foreign.ckpt", "is not a ganlab checkpoint"),
        # safe loading stops at the global to call; the message names it (torch words the
        # refusal differently for an unlisted class and for a blocked module such as os)
        "pickle": (tmp_path / "pickle.ckpt",
                   "contains code that ganlab refuses to run: its pickle calls functools.partial,"),
        "code": (tmp_path / "code.ckpt",
                 f"contains code that ganlab refuses to run: its pickle calls "
                 f"{os.system.__module__}.system,"),
    }
    data = trained.read_bytes()
    cases["truncated"][0].write_bytes(data[: len(data) // 2])
    cases["junk"][0].write_bytes(b"not a checkpoint at all")
    torch.save({"state_dict": {"w": torch.zeros(2)}, "epoch": 0}, cases["foreign"][0])
    torch.save({"state_dict": {}, "f": functools.partial(print)}, cases["pickle"][0])
    marker = tmp_path / "marker"
    torch.save({"state_dict": {}, "x": RunsCode(os.system, f"touch {marker}")},
               cases["code"][0])
    for path, expected in cases.values():
        with pytest.raises(CheckpointError) as err:
            load_checkpoint(path)
        message = assert_one_line_error(err.value, expected, str(path))
        if "corrupt" in expected:  # torch's own words, shortened at a word boundary only
            shown = re.search(r"\(\w+: (.*)\); use another", message).group(1)
            shown = shown.removesuffix(" ...")
            original = torch_message(path)
            at = original.find(shown)
            assert at >= 0, (shown, original)
            assert original[at + len(shown) : at + len(shown) + 1] in ("", " ", "."), shown
    assert not marker.exists()


def torch_message(path: Path) -> str:
    try:
        torch.load(path, weights_only=True)
    except Exception as err:
        return " ".join(str(err).split())
    raise AssertionError(f"{path} loaded")


class RunsCode:
    """Pickles to a call of ``func(*args)``, as a malicious file would."""

    def __init__(self, func, *args) -> None:
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def test_checkpoint_from_another_architecture(trained):
    wider = build_gan(toy_cfg(Path("unused"), "arch.generator.hidden=[64]"))
    with pytest.raises(CheckpointError) as err:
        check_compatible(load_checkpoint(trained), wider)
    message = str(err.value)
    assert message.startswith("checkpoint from another architecture")
    assert "'generator.out.weight' has shape (2, 32) in the checkpoint, (2, 64) in the model" \
        in message


def test_resume_from_a_corrupt_checkpoint_fails_before_training(trained, tmp_path):
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(trained.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        train(toy_cfg(tmp_path / "run", f"ckpt_path={bad}"))
    with pytest.raises(CheckpointError, match="no checkpoint at"):
        train(toy_cfg(tmp_path / "run", f"ckpt_path={tmp_path / 'nosuch.ckpt'}"))
