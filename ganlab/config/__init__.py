"""What a run is: its composed config (:func:`compose`), the schema of ganlab's keys
(:mod:`.schema`) and the rules between them (:mod:`.rules`, :func:`~.rules.check_config`)."""

from ganlab.config.compose import CONF_DIR, compose

__all__ = ["CONF_DIR", "compose"]
