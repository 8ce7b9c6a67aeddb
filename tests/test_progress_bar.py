"""ganlab's progress bar redraws on logged steps only (not after every batch) and shows the
losses logged on them. Docs: docs/BENCHMARKS.md.
"""

from __future__ import annotations

import pytorch_lightning as pl

from conftest import DROPOUT_RING, tiny_run
from ganlab.callbacks import ProgressBar


class CountingBar(ProgressBar):
    """ganlab's bar, counting its redraws and the values it was given per training batch."""

    def init_train_tqdm(self):
        bar = super().init_train_tqdm()
        self.draws, self.postfixes = 0, []
        refresh, set_postfix = bar.refresh, bar.set_postfix

        def counted_refresh(*args, **kwargs):
            self.draws += 1
            return refresh(*args, **kwargs)

        def counted_postfix(ordered_dict=None, refresh=True, **kwargs):
            self.postfixes.append(dict(ordered_dict or {}))
            return set_postfix(ordered_dict, refresh=refresh, **kwargs)

        bar.refresh, bar.set_postfix = counted_refresh, counted_postfix
        return bar


def test_progress_bar_shows_logged_losses_and_redraws_on_logged_steps_only(tmp_path):
    """With a long clock, the bar is redrawn on logged steps, the first and the last batch of
    the epoch, and shows the losses logged on those steps."""
    bar = CountingBar(refresh_seconds=3600)
    tiny_run([*DROPOUT_RING, "arch.discriminator.hidden_dropout=0"],  # 30 batches of 20
             max_epochs=1, log_every_n_steps=5, callbacks=[bar], enable_progress_bar=True,
             logger=pl.loggers.CSVLogger(tmp_path))
    # values on the 6 logged batches (5, 10, ..., 30) and at the epoch's end
    logged = [p for p in bar.postfixes if "train/loss_d" in p]
    assert len(logged) == 7, bar.postfixes
    assert all(isinstance(p["train/loss_g"], float) for p in logged)
    # redrawn for batch 1 and the 6 logged ones, plus tqdm's own redraws when Lightning
    # resets, updates and closes the bar around the epoch: not after each of the 30 batches
    assert 7 <= bar.draws <= 10, bar.draws
