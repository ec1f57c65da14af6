"""The fashion product photos' cached features, shared by the benchmarks (see sketchrec.embedders.features)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from sketchrec.data import registry
from sketchrec.embedders import features
from sketchrec.embedders.features import DEFAULT_CACHE

__all__ = ["DEFAULT_CACHE", "catalogue", "image_features", "title_tokens"]


def catalogue():
    """The registry's fashion photos and their index columns as numpy object arrays."""
    data = registry.load("fashion-images")
    meta = {k: np.array(data.index.column(k).to_pylist(), dtype=object)
            for k in ("productDisplayName", "articleType", "baseColour", "masterCategory")}
    return data, meta


def image_features(cache_dir: Path = DEFAULT_CACHE, threads: int = 2, batch_size: int = 32):
    """(ids, pooled (n, 1280) float32, regions (n, 49, 1280) float16 memmap)."""
    return features.image_features("fashion-images", cache_dir, threads, batch_size)


def title_tokens(cache_dir: Path = DEFAULT_CACHE, threads: int = 2, max_length: int = 32):
    """(tokens (n, L, 384) float16, mask (n, L) bool) of the product titles."""
    return features.text_tokens("fashion-images", "productDisplayName", cache_dir, threads, max_length)
