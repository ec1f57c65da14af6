"""Data layer: reading events, id maps, sessions and splits, dataset registry."""

from sketchrec.data.idmap import IdMap, Lookup
from sketchrec.data.interactions import Interactions
from sketchrec.data.readers import DataValidationError, IngestReport, InputNotFoundError, read_interactions
from sketchrec.data.sessions import (
    Sessions, concat, expand_prefixes, sessionize, srgnn_filter, time_split, user_holdout,
    validation_split,
)

__all__ = [
    "IdMap", "Lookup", "Interactions", "DataValidationError", "IngestReport", "InputNotFoundError", "read_interactions",
    "Sessions", "concat", "expand_prefixes", "sessionize", "srgnn_filter", "time_split",
    "user_holdout", "validation_split",
]
