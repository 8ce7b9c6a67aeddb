"""Running: train a run (:mod:`.train`), restore one from a checkpoint (:mod:`.restore`), the
checks on how it is launched (:mod:`.launch`) and where it writes (:mod:`.output`), its
checkpoint files (:mod:`.checkpoints`), loggers (:mod:`.loggers`, :mod:`.wandb_setup`) and
the files later tools read (:mod:`.files`)."""
