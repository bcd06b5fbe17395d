"""styleexp: an experiment-tracking pipeline for neural style transfer ablation studies."""

__version__ = "0.1.0"
