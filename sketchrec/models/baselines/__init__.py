"""Baselines every model must beat: popularity, sequential rules, S-KNN / V-SKNN, item-kNN, EASE,
RP3beta, SLIM, iALS (the `implicit` library, extra ``[als]``)."""

from sketchrec.models.baselines.ease import EASE
from sketchrec.models.baselines.ials import IALS
from sketchrec.models.baselines.itemknn import ItemKNN
from sketchrec.models.baselines.popularity import Popularity
from sketchrec.models.baselines.rp3beta import RP3beta
from sketchrec.models.baselines.rules import SequentialRules
from sketchrec.models.baselines.slim import SLIM
from sketchrec.models.baselines.sknn import VSKNN, SessionKNN

__all__ = ["EASE", "IALS", "ItemKNN", "Popularity", "RP3beta", "SLIM", "SequentialRules", "SessionKNN", "VSKNN"]
