"""Recommenders, all behind the `Recommender` protocol."""

from sketchrec.models.base import Recommender, model_class
from sketchrec.models.baselines import (EASE, IALS, VSKNN, ItemKNN, Popularity, RP3beta, SLIM,
                                        SequentialRules, SessionKNN)
from sketchrec.models.blend import Blend
from sketchrec.models.emde import EMDE
from sketchrec.models.session_clusters import ClusteredSessions
from sketchrec.models.srgnn import SRGNN, TAGNN

#: short names used by the CLI and configuration files
MODELS = {
    "pop": Popularity,
    "sr": SequentialRules,
    "sknn": SessionKNN,
    "vsknn": VSKNN,
    "iknn": ItemKNN,
    "ease": EASE,
    "rp3beta": RP3beta,
    "slim": SLIM,
    "ials": IALS,
    "emde": EMDE,
    "srgnn": SRGNN,
    "tagnn": TAGNN,
}

__all__ = ["MODELS", "Recommender", "model_class", "Blend", "ClusteredSessions", "EASE", "EMDE", "IALS", "RP3beta", "SLIM", "SRGNN", "TAGNN", "VSKNN", "ItemKNN", "Popularity",
           "SequentialRules", "SessionKNN"]
