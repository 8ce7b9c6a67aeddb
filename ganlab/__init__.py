"""ganlab: config-driven experiments with Generative Adversarial Networks."""

__version__ = "0.1.0"
