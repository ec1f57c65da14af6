"""Baselines every model must beat: popularity, sequential rules, S-KNN / V-SKNN, item-kNN, EASE."""

from sketchrec.models.baselines.ease import EASE
from sketchrec.models.baselines.itemknn import ItemKNN
from sketchrec.models.baselines.popularity import Popularity
from sketchrec.models.baselines.rules import SequentialRules
from sketchrec.models.baselines.sknn import VSKNN, SessionKNN

__all__ = ["EASE", "ItemKNN", "Popularity", "SequentialRules", "SessionKNN", "VSKNN"]
