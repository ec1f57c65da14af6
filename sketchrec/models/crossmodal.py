"""Deprecated: cross-modal retrieval moved to `sketchrec.retrieval.crossmodal` (next to the
Centroid Triplet Loss models and the catalogue search that uses it). This alias goes in the
next release.

Its names are looked up on first use (PEP 562) and warn then. It is the one import from
`models/` into `retrieval/`, declared as such in `.importlinter` (`ignore_imports`).
"""

import warnings

__all__ = ["POOLINGS", "TEMDE", "AttentionPool", "CrossModalModel", "CrossModalTrainer", "MeanPool", "info_nce",
           "masked_mean", "retrieval_scores", "vse_hinge"]


def __getattr__(name: str):
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    warnings.warn("sketchrec.models.crossmodal is deprecated: import from sketchrec.retrieval.crossmodal "
                  "(the alias goes in the next release)", DeprecationWarning, stacklevel=2)
    from sketchrec.retrieval import crossmodal
    return getattr(crossmodal, name)
