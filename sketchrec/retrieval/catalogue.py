"""Text -> product search over a catalogue of images: a trained cross-modal model plus its index.

`CatalogueSearch(...).fit(regions, tokens, mask, ids, titles)` trains a `CrossModalModel` (mean,
self-attention or T-EMDE pooling) on product photos' region features and their titles' token
embeddings — product-disjoint train / validation / test split, epoch chosen on validation
R-sum, test scores kept as `metrics_` — then indexes every catalogue image once in a
`CentroidIndex`. `search(["red running shoes"], k, as_result=True)` encodes the query with the
same MiniLM token model and answers the k closest products as a `SearchResult`.

Saved as a versioned, checksummed directory (`sketchrec.versioned`, as model bundles are; kind
``catalogue-search``): weights and vectors in safetensors, ids / titles / configuration in JSON.
No pickle. `sketchrec serve` answers POST /search from one.

    search = CatalogueSearch(pooling="attention").fit(regions, tokens, mask, ids, titles)
    search.save("runs/fashion-search")
    CatalogueSearch.load("runs/fashion-search").search(["red running shoes"], k=10, as_result=True)
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

import numpy as np

from sketchrec.base import Estimator, json_scalar
from sketchrec.retrieval.index import CentroidIndex, SearchResult

log = logging.getLogger(__name__)
KIND = "catalogue-search"


def _deprecated(old: str, new: str) -> None:
    warnings.warn(f"{old} is deprecated: use {new} (the old form goes in the next release)",
                  DeprecationWarning, stacklevel=3)


class _fit_method:
    """`fit` on an instance (the estimator's), and on the class the former classmethod
    ``RegionPCA.fit(regions, rows, dim, ...)`` (deprecated), so that both calls keep working."""

    def __init__(self, on_instance, on_class):
        self.on_instance, self.on_class = on_instance, on_class
        self.__doc__ = on_instance.__doc__

    def __get__(self, obj, cls):
        if obj is None:
            return self.on_class.__get__(None, cls)
        return self.on_instance.__get__(obj, cls)


class RegionPCA(Estimator):
    """A fixed linear map of region features to fewer dimensions (a PCA fitted on training products).

    dim : output dimensions; sample : about how many region vectors to fit on; seed : which ones
    Learned: mean_ (in_dim,) and components_ (dim, in_dim), float32.
    """

    _state = ("mean_", "components_")

    def __init__(self, dim: int = 256, sample: int = 100_000, seed: int = 0):
        self.dim, self.sample, self.seed = dim, sample, seed

    def _fit(self, regions, rows: np.ndarray | None = None) -> "RegionPCA":
        """Fit on the regions (n, R, in_dim) of products `rows` (default: all), at most about
        `sample` region vectors of them."""
        from sklearn.decomposition import PCA
        rows = np.arange(len(regions)) if rows is None else np.asarray(rows)
        rng = np.random.default_rng(self.seed)
        pick = np.sort(rng.choice(rows, min(len(rows), self.sample // regions.shape[1] + 1), replace=False))
        flat = np.asarray(regions[pick], dtype=np.float32).reshape(-1, regions.shape[2])
        pca = PCA(self.dim, random_state=self.seed).fit(flat)
        log.info("region PCA to %d dims keeps %.1f%% of the variance", self.dim,
                 100 * pca.explained_variance_ratio_.sum())
        self.mean_, self.components_ = pca.mean_.astype(np.float32), pca.components_.astype(np.float32)
        return self

    @classmethod
    def _fit_classmethod(cls, regions, rows: np.ndarray, dim: int, sample: int = 100_000,
                         seed: int = 0) -> "RegionPCA":
        _deprecated("RegionPCA.fit(regions, rows, dim, ...)", "RegionPCA(dim, sample, seed).fit(regions, rows)")
        return cls(dim, sample, seed)._fit(regions, rows)

    fit = _fit_method(_fit, _fit_classmethod)

    def transform(self, regions, block: int = 1000) -> np.ndarray:
        """(n, R, in_dim) -> (n, R, dim) float32, in blocks (the input may be a float16 memmap)."""
        self._check_fitted()
        dim = len(self.components_)
        out = np.empty((len(regions), regions.shape[1], dim), dtype=np.float32)
        for start in range(0, len(regions), block):
            x = np.asarray(regions[start:start + block], dtype=np.float32)
            out[start:start + block] = (x - self.mean_) @ self.components_.T
        return out

    @classmethod
    def from_arrays(cls, mean: np.ndarray, components: np.ndarray) -> "RegionPCA":
        """A fitted map from its mean (in_dim,) and components (dim, in_dim)."""
        pca = cls(dim=len(components))
        pca.mean_, pca.components_ = np.asarray(mean), np.asarray(components)
        return pca

    @property
    def mean(self) -> np.ndarray:
        """Deprecated: `mean_`."""
        _deprecated("RegionPCA.mean", "mean_")
        return self.mean_

    @property
    def components(self) -> np.ndarray:
        """Deprecated: `components_`."""
        _deprecated("RegionPCA.components", "components_")
        return self.components_


def product_split(n: int, seed: int = 0, shares=(0.7, 0.1)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded disjoint (train, validation, test) row indices, sorted."""
    perm = np.random.default_rng(seed).permutation(n)
    a, b = int(shares[0] * n), int((shares[0] + shares[1]) * n)
    return np.sort(perm[:a]), np.sort(perm[a:b]), np.sort(perm[b:])


class CatalogueSearch(Estimator):
    """Text -> product search: a cross-modal model trained on the catalogue, and its image index.

    pooling : the cross-modal model's pooling ("mean", "attention" or "temde")
    region_pca : reduce image regions to this many dims with a `RegionPCA` first (0: no)
    seed : the training's seed
    split_seed : the seed of the product-disjoint 70 / 10 / 20 % split (and of the PCA's sample)
    max_length : tokens per query text
    trainer_params : further `CrossModalTrainer` settings by name (dim, epochs, lr, threads, ...)

    Learned: model_ (the `CrossModalModel`, eval mode), ids_ (n,) and texts_ (n,) of the
    catalogue, image_vectors_ (n, dim) unit rows, projection_ (a `RegionPCA` or None), index_
    (an instance `CentroidIndex` over image_vectors_), config_ (what the bundle records) and
    metrics_ (the held-out products' scores, "test_...").
    """

    def __init__(self, pooling: str = "attention", region_pca: int = 256, seed: int = 0, split_seed: int = 0,
                 max_length: int = 32, trainer_params: dict | None = None):
        self.pooling, self.region_pca, self.seed, self.split_seed = pooling, region_pca, seed, split_seed
        self.max_length, self.trainer_params = max_length, trainer_params

    def _fitted_marker(self) -> str:
        return "model_"

    # -- training -------------------------------------------------------------------
    def fit(self, regions, tokens, token_mask, ids, texts) -> "CatalogueSearch":
        """Fit on a product-disjoint 70 % (epoch chosen on 10 %), score on the other 20 %, index all.

        regions: (n, R, d_img) image region features (float16 memmap is fine); tokens / token_mask:
        (n, L, d_txt) / (n, L) title token features; ids, texts: (n,) product ids and titles."""
        from sketchrec.retrieval.crossmodal import CrossModalTrainer
        n = len(ids)
        if not (len(regions) == len(tokens) == len(token_mask) == len(texts) == n):
            raise ValueError(f"regions, tokens, mask, ids and texts must have one row per product "
                             f"({len(regions)}, {len(tokens)}, {len(token_mask)}, {n}, {len(texts)})")
        if n < 20:
            raise ValueError(f"{n} products: at least 20 are needed for train / validation / test splits")
        train, valid, test = product_split(n, self.split_seed)
        projection = (RegionPCA(self.region_pca, seed=self.split_seed).fit(regions, train)
                      if self.region_pca else None)
        regions = projection.transform(regions) if projection else np.asarray(regions, dtype=np.float32)
        trainer = CrossModalTrainer(self.pooling, seed=self.seed, **(self.trainer_params or {}))
        trainer.fit(regions[train], tokens[train], token_mask[train],
                    validation=(regions[valid], tokens[valid], token_mask[valid]))
        test_scores = trainer.evaluate(regions[test], tokens[test], token_mask[test])
        image_vectors, _ = trainer.embed(regions)
        config = {"pooling": trainer.pooling, **trainer.model_params, "image_dim": int(regions.shape[2]),
                  "text_dim": int(tokens.shape[2]), "max_length": self.max_length, "seed": trainer.seed,
                  "split_seed": self.split_seed, "products": {"train": len(train), "validation": len(valid),
                                                              "test": len(test)},
                  "best_epoch": int(getattr(trainer, "best_epoch_", len(trainer.history_)))}
        self._set_state(trainer.model_, np.asarray(ids), [str(t) for t in texts], image_vectors.astype(np.float32),
                        projection, config, {f"test_{k}": float(v) for k, v in test_scores.items()})
        return self

    def _set_state(self, model, ids, texts, image_vectors, projection, config, metrics) -> None:
        self.model_, self.ids_, self.texts_, self.image_vectors_ = model, ids, texts, image_vectors
        self.projection_, self.config_, self.metrics_ = projection, config, metrics
        # the vectors are unit rows already (the model normalises): searched as they are, all the
        # queries of a call in one block
        self.index_ = CentroidIndex("instance", chunk_rows=None, assume_unit=True).fit(image_vectors, ids)

    @classmethod
    def train(cls, regions, tokens, token_mask, ids, texts, pooling: str = "attention", region_pca: int = 256,
              seed: int = 0, split_seed: int = 0, max_length: int = 32, **trainer_kw) -> "CatalogueSearch":
        """Deprecated: ``CatalogueSearch(pooling, region_pca, seed, split_seed, max_length,
        trainer_params=trainer_kw).fit(regions, tokens, token_mask, ids, texts)``."""
        _deprecated("CatalogueSearch.train(...)", "CatalogueSearch(pooling, ..., trainer_params={...}).fit(...)")
        return cls(pooling, region_pca, seed, split_seed, max_length,
                   trainer_params=trainer_kw or None).fit(regions, tokens, token_mask, ids, texts)

    # -- querying -------------------------------------------------------------------
    def encode_queries(self, queries: list[str], encoder=None) -> np.ndarray:
        """(B, dim) float32 unit vectors of the query texts (the model's text side over MiniLM tokens)."""
        import torch

        from sketchrec.embedders.text import TextEncoder
        encoder = encoder or TextEncoder(max_length=self.config_.get("max_length", 32), progress=False)
        tokens, mask = encoder.encode_tokens(list(queries))
        with torch.inference_mode():
            return self.model_.encode_texts(torch.as_tensor(tokens), torch.as_tensor(mask)).numpy()

    def search(self, queries: list[str], k: int = 10, encoder=None, *, as_result: bool = False):
        """The k catalogue products closest to each query text.

        as_result=True: a `SearchResult` (rows (B, k) catalogue rows, groups (B, k) product ids,
        scores (B, k) cosines; k is cut to the catalogue's size). as_result=False (deprecated: the
        former shape, kept for one release): per query {"query", "ids", "texts", "scores"}, scores
        rounded to 6 decimals."""
        if isinstance(queries, str):
            raise TypeError("queries must be a list of strings, not one string")
        self._check_fitted()
        if not as_result:
            _deprecated("CatalogueSearch.search(...) returning dicts", "search(..., as_result=True)")
        k = min(k, len(self.ids_))
        if not queries:
            empty = np.zeros((0, k))
            return SearchResult(empty.astype(np.int64), empty.astype(self.ids_.dtype),
                                empty.astype(np.float32)) if as_result else []
        hits = self.index_.search(self.encode_queries(queries, encoder), k)
        if as_result:
            return hits
        return [{"query": text, "ids": self.ids_[t].tolist(), "texts": [self.texts_[i] for i in t],
                 "scores": np.round(s, 6).tolist()} for text, t, s in zip(queries, hits.rows, hits.scores)]

    # -- the former attribute names (deprecated) --------------------------------------------
    def _old(name):
        def get(self):
            _deprecated(f"CatalogueSearch.{name}", f"{name}_")
            return getattr(self, name + "_")
        get.__doc__ = f"Deprecated: `{name}_`."
        return property(get)

    model, ids, texts, image_vectors = _old("model"), _old("ids"), _old("texts"), _old("image_vectors")
    projection, config, metrics = _old("projection"), _old("config"), _old("metrics")
    del _old

    # -- persistence ----------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        """Write a new version of the search bundle at `path`; returns the version directory."""
        from safetensors.numpy import save_file

        from sketchrec.versioned import commit_version, new_version
        self._check_fitted()
        tmp = new_version(path)
        weights = {f"model.{k}": v.detach().cpu().numpy() for k, v in self.model_.state_dict().items()}
        weights["image_vectors"] = np.ascontiguousarray(self.image_vectors_)
        if self.projection_ is not None:
            weights["projection.mean"], weights["projection.components"] = (
                self.projection_.mean_, np.ascontiguousarray(self.projection_.components_))
        save_file(weights, str(tmp / "weights.safetensors"))
        (tmp / "catalogue.json").write_text(json.dumps({"ids": self.ids_.tolist(), "texts": self.texts_}))
        return commit_version(tmp, {"kind": KIND, "config": self.config_, "metrics": self.metrics_,
                                    "params": json.loads(json.dumps(self.saved_params(), default=json_scalar))})

    @classmethod
    def load(cls, path: str | Path, verify: bool = True) -> "CatalogueSearch":
        """Read a search bundle written by `save` (checked as every bundle is: `sketchrec.versioned`)."""
        from sketchrec.versioned import read_retrying
        return read_retrying(path, lambda root: cls._load_version(root, verify))

    @classmethod
    def _load_version(cls, root: Path, verify: bool) -> "CatalogueSearch":
        import torch
        from safetensors.numpy import load_file

        from sketchrec.versioned import read_version
        from sketchrec.retrieval.crossmodal import CrossModalModel
        version, manifest = read_version(root, verify, kind=KIND)
        cfg = manifest["config"]
        arrays = load_file(str(version / "weights.safetensors"))
        model = CrossModalModel(cfg["image_dim"], cfg["text_dim"], pooling=cfg["pooling"], dim=cfg["dim"],
                                n=cfg["n"], k=cfg["k"], d=cfg["d"], temperature=cfg["temperature"],
                                sketch_head=cfg.get("sketch_head", False))
        model.load_state_dict({k[len("model."):]: torch.from_numpy(v) for k, v in arrays.items()
                               if k.startswith("model.")})
        model.eval()
        projection = (RegionPCA.from_arrays(arrays["projection.mean"], arrays["projection.components"])
                      if "projection.mean" in arrays else None)
        cat = json.loads((version / "catalogue.json").read_text())
        params = manifest.get("params")
        if params is None:                    # a bundle saved before the parameters were recorded
            model_params = {name: cfg[name] for name in ("dim", "n", "k", "d", "temperature") if name in cfg}
            params = {"pooling": cfg["pooling"], "region_pca": len(projection.components_) if projection else 0,
                      "seed": cfg.get("seed", 0), "split_seed": cfg.get("split_seed", 0),
                      "max_length": cfg.get("max_length", 32),
                      "trainer_params": {**model_params, "sketch_head": cfg.get("sketch_head", False)}}
        search = cls(**params)
        search._set_state(model, np.asarray(cat["ids"]), cat["texts"], arrays["image_vectors"], projection, cfg,
                          manifest.get("metrics", {}))
        search.path_ = version
        return search
