"""Deprecated location: `Embeddings` moved to `sketchrec.data.embeddings` (beside the other data
containers; `sketchrec/embedders/` is the text and image encoders). This alias stays for one release."""

import warnings

from sketchrec.data.embeddings import Embeddings  # noqa: F401

warnings.warn("sketchrec.embeddings moved to sketchrec.data.embeddings", DeprecationWarning, stacklevel=2)
