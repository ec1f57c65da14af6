"""Deprecated: cross-modal retrieval moved to `sketchrec.retrieval.crossmodal` (next to the
Centroid Triplet Loss models and the catalogue search that uses it). This alias goes in the
next release.

Its names are looked up on first use (PEP 562) and warn then: models sit beside retrieval in
the layers and import nothing from it; this shim only forwards to it.
"""

import importlib
import warnings

__all__ = ["POOLINGS", "TEMDE", "AttentionPool", "CrossModalModel", "CrossModalTrainer", "MeanPool", "info_nce",
           "masked_mean", "retrieval_scores", "vse_hinge"]


def __getattr__(name: str):
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn("sketchrec.models.crossmodal is deprecated: import from sketchrec.retrieval.crossmodal "
                  "(the alias goes in the next release)", DeprecationWarning, stacklevel=2)
    return getattr(importlib.import_module("sketchrec.retrieval.crossmodal"), name)
