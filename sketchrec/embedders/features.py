"""Content features of a product catalogue, computed once and cached on disk.

Images: EfficientNet-Lite0 (ImageNet weights) at 224 px — the pooled 1280-d feature and the
7 × 7 feature-map cells as regions (float16, memory-mapped: 9,583 products are 1.2 GB).
Texts: MiniLM token embeddings (float16) and their mask. A catalogue is any registry dataset
with `ids`, `read_bytes(id)` and an Arrow `index` table holding the text column (the fashion
photos: `fashion-images`, titles in `productDisplayName`), or such an object itself (your own
files: `sketchrec.data.catalogue.ImageCatalogue`).

Cache: ~/.cache/sketchrec/features/ (or `cache_dir`), keyed by dataset name; a cache whose
stored ids differ from the dataset's is recomputed.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)
DEFAULT_CACHE = Path.home() / ".cache" / "sketchrec" / "features"


def _dataset(dataset):
    """A registry catalogue by name, or a catalogue object (e.g. `sketchrec.data.catalogue.ImageCatalogue`)."""
    if not isinstance(dataset, str):
        return dataset
    from sketchrec.data import registry
    return registry.load(dataset)


def _cache_stem(dataset) -> str:
    return dataset.replace("-images", "") if isinstance(dataset, str) else dataset.name


def catalogue_column(dataset, column: str) -> np.ndarray:
    """One column of the catalogue's index as a numpy object array, in `ids` order."""
    data = _dataset(dataset)
    if column not in data.index.column_names:
        raise ValueError(f"{_cache_stem(dataset)} has no column {column!r}; it has {data.index.column_names}")
    return np.array(data.index.column(column).to_pylist(), dtype=object)


def image_features(dataset="fashion-images", cache_dir: Path = DEFAULT_CACHE, threads: int = 2,
                   batch_size: int = 32):
    """(ids, pooled (n, 1280) float32, regions (n, 49, 1280) float16 memmap) of the catalogue's images."""
    from sketchrec.embedders.image import ImageEncoder
    data = _dataset(dataset)
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    stem = _cache_stem(dataset)
    ids_f, pooled_f, regions_f = (cache_dir / f"{stem}-lite0-{k}.npy" for k in ("ids", "pooled", "regions"))
    if ids_f.exists() and regions_f.exists() and np.array_equal(np.load(ids_f), data.ids):
        return data.ids, np.load(pooled_f), np.load(regions_f, mmap_mode="r")
    encoder = ImageEncoder(batch_size=batch_size, threads=threads)
    n = len(data.ids)
    regions = np.lib.format.open_memmap(regions_f.with_suffix(".tmp.npy"), mode="w+", dtype=np.float16,
                                        shape=(n, 49, 1280))
    pooled = np.empty((n, 1280), dtype=np.float32)
    t0 = time.perf_counter()
    step = 512
    for start in range(0, n, step):        # bounded memory: 512 images decoded at a time
        rows = slice(start, min(start + step, n))
        p, r = encoder.encode([data.read_bytes(i) for i in data.ids[rows]], regions=True)
        pooled[rows], regions[rows] = p, r.astype(np.float16)
    regions.flush()
    del regions
    regions_f.with_suffix(".tmp.npy").replace(regions_f)
    np.save(pooled_f, pooled)
    np.save(ids_f, data.ids)
    log.info("%s image features: %.0f s for %d images", dataset, time.perf_counter() - t0, n)
    return data.ids, pooled, np.load(regions_f, mmap_mode="r")


def text_tokens(dataset="fashion-images", column: str = "productDisplayName",
                cache_dir: Path = DEFAULT_CACHE, threads: int = 2, max_length: int = 32):
    """(tokens (n, L, 384) float16, mask (n, L) bool) of a text column of the catalogue."""
    from sketchrec.embedders.text import TextEncoder
    data = _dataset(dataset)
    texts = catalogue_column(dataset, column)
    cache_dir = Path(cache_dir)
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f"{_cache_stem(dataset)}-minilm-tokens-{column}-{max_length}.npz"
    if path.exists():
        with np.load(path) as z:
            if np.array_equal(z["ids"], data.ids):
                return z["tokens"], z["mask"]
    tokens, mask = TextEncoder(batch_size=128, max_length=max_length, threads=threads).encode_tokens(list(texts))
    np.savez(path, ids=data.ids, tokens=tokens.astype(np.float16), mask=mask)
    return tokens.astype(np.float16), mask
