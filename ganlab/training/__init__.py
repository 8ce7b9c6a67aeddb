"""Training: the LightningModule (:mod:`.module`), the step interface it hands the update
rules (:mod:`.step`), the rules themselves (:mod:`.rules`), D's and G's costs (:mod:`.costs`)
and how classes enter a step (:mod:`.labels`)."""
