"""Training-time augmentations (transforms kept apart from the models that use them)."""

from sketchrec.augment.adjacency import KINDS, AdjacencyAugmentation

__all__ = ["KINDS", "AdjacencyAugmentation"]
