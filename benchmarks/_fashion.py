"""Features of the fashion product photos, computed once and cached (shared by the benchmarks).

Images: EfficientNet-Lite0 (ImageNet weights) at 224 px — the pooled 1280-d feature and the
7 × 7 feature-map cells as regions (float16, memory-mapped). Titles: MiniLM token embeddings
(float16) and their mask. Cache: ~/.cache/sketchrec/features/ (or --cache-dir).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np

from sketchrec.data import registry

log = logging.getLogger("fashion-features")
DEFAULT_CACHE = Path.home() / ".cache" / "sketchrec" / "features"


def catalogue():
    """The registry's fashion photos and their index columns as numpy object arrays."""
    data = registry.load("fashion-images")
    meta = {k: np.array(data.index.column(k).to_pylist(), dtype=object)
            for k in ("productDisplayName", "articleType", "baseColour", "masterCategory")}
    return data, meta


def image_features(cache_dir: Path = DEFAULT_CACHE, threads: int = 2, batch_size: int = 32):
    """(ids, pooled (n, 1280) float32, regions (n, 49, 1280) float16 memmap)."""
    from sketchrec.embedders.image import ImageEncoder
    data, _ = catalogue()
    cache_dir.mkdir(parents=True, exist_ok=True)
    ids_f, pooled_f, regions_f = (cache_dir / f"fashion-lite0-{k}.npy" for k in ("ids", "pooled", "regions"))
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
    log.info("fashion image features: %.0f s for %d images", time.perf_counter() - t0, n)
    return data.ids, pooled, np.load(regions_f, mmap_mode="r")


def title_tokens(cache_dir: Path = DEFAULT_CACHE, threads: int = 2, max_length: int = 32):
    """(tokens (n, L, 384) float16, mask (n, L) bool) of the product titles."""
    from sketchrec.embedders.text import TextEncoder
    data, meta = catalogue()
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f"fashion-minilm-tokens-{max_length}.npz"
    if path.exists():
        with np.load(path) as z:
            if np.array_equal(z["ids"], data.ids):
                return z["tokens"], z["mask"]
    tokens, mask = TextEncoder(batch_size=128, max_length=max_length, threads=threads).encode_tokens(
        list(meta["productDisplayName"]))
    np.savez(path, ids=data.ids, tokens=tokens.astype(np.float16), mask=mask)
    return tokens.astype(np.float16), mask
