"""Recommenders, all behind the `Recommender` protocol."""

from sketchrec.models.base import Recommender, model_class
from sketchrec.models.baselines import EASE, VSKNN, ItemKNN, Popularity, SequentialRules, SessionKNN
from sketchrec.models.emde import EMDE

#: short names used by the CLI and configuration files
MODELS = {
    "pop": Popularity,
    "sr": SequentialRules,
    "sknn": SessionKNN,
    "vsknn": VSKNN,
    "iknn": ItemKNN,
    "ease": EASE,
    "emde": EMDE,
}

__all__ = ["MODELS", "Recommender", "model_class", "EASE", "EMDE", "VSKNN", "ItemKNN", "Popularity",
           "SequentialRules", "SessionKNN"]
