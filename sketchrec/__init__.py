"""sketchrec: recommendations from massive, multimodal behavioural data."""

__version__ = "0.1.0"
