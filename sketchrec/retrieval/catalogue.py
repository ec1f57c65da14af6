"""Text -> product search over a catalogue of images: a trained cross-modal model plus its index.

`CatalogueSearch.train` fits a `CrossModalModel` (mean, self-attention or T-EMDE pooling) on
product photos' region features and their titles' token embeddings — product-disjoint train /
validation / test split, epoch chosen on validation R-sum, test scores kept as metrics — then
encodes every catalogue image once. `search(["red running shoes"], k)` encodes the query with
the same MiniLM token model and ranks the catalogue by cosine similarity.

Saved as a versioned, checksummed directory (the bundle format of `sketchrec.bundle`, kind
``catalogue-search``): weights and vectors in safetensors, ids / titles / configuration in JSON.
No pickle.

    search = CatalogueSearch.train(regions, tokens, mask, ids, titles, pooling="attention")
    search.save("runs/fashion-search")
    CatalogueSearch.load("runs/fashion-search").search(["red running shoes"], k=10)
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)
KIND = "catalogue-search"


@dataclass
class RegionPCA:
    """A fixed linear map of region features to fewer dimensions (a PCA fitted on training products)."""

    mean: np.ndarray
    components: np.ndarray          # (dim, in_dim)

    @classmethod
    def fit(cls, regions, rows: np.ndarray, dim: int, sample: int = 100_000, seed: int = 0) -> "RegionPCA":
        """Fit on the regions of `rows` (at most about `sample` region vectors)."""
        from sklearn.decomposition import PCA
        rng = np.random.default_rng(seed)
        pick = np.sort(rng.choice(rows, min(len(rows), sample // regions.shape[1] + 1), replace=False))
        flat = np.asarray(regions[pick], dtype=np.float32).reshape(-1, regions.shape[2])
        pca = PCA(dim, random_state=seed).fit(flat)
        log.info("region PCA to %d dims keeps %.1f%% of the variance", dim, 100 * pca.explained_variance_ratio_.sum())
        return cls(pca.mean_.astype(np.float32), pca.components_.astype(np.float32))

    def transform(self, regions, block: int = 1000) -> np.ndarray:
        """(n, R, in_dim) -> (n, R, dim) float32, in blocks (the input may be a float16 memmap)."""
        dim = len(self.components)
        out = np.empty((len(regions), regions.shape[1], dim), dtype=np.float32)
        for start in range(0, len(regions), block):
            x = np.asarray(regions[start:start + block], dtype=np.float32)
            out[start:start + block] = (x - self.mean) @ self.components.T
        return out


def product_split(n: int, seed: int = 0, shares=(0.7, 0.1)) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Seeded disjoint (train, validation, test) row indices, sorted."""
    perm = np.random.default_rng(seed).permutation(n)
    a, b = int(shares[0] * n), int((shares[0] + shares[1]) * n)
    return np.sort(perm[:a]), np.sort(perm[a:b]), np.sort(perm[b:])


@dataclass
class CatalogueSearch:
    model: object                               # a CrossModalModel, in eval mode
    ids: np.ndarray                             # (n,) catalogue ids
    texts: list                                 # (n,) product titles
    image_vectors: np.ndarray                   # (n, dim) unit rows
    projection: RegionPCA | None = None
    config: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)

    # -- training -------------------------------------------------------------------
    @classmethod
    def train(cls, regions, tokens, token_mask, ids, texts, pooling: str = "attention", region_pca: int = 256,
              seed: int = 0, split_seed: int = 0, max_length: int = 32, **trainer_kw) -> "CatalogueSearch":
        """Fit on a product-disjoint 70 % (epoch chosen on 10 %), score on the other 20 %, index all.

        regions: (n, R, d_img) image region features (float16 memmap is fine); tokens / token_mask:
        (n, L, d_txt) / (n, L) title token features; trainer_kw go to `CrossModalTrainer`."""
        from sketchrec.models.crossmodal import CrossModalTrainer
        n = len(ids)
        if not (len(regions) == len(tokens) == len(token_mask) == len(texts) == n):
            raise ValueError(f"regions, tokens, mask, ids and texts must have one row per product "
                             f"({len(regions)}, {len(tokens)}, {len(token_mask)}, {n}, {len(texts)})")
        if n < 20:
            raise ValueError(f"{n} products: at least 20 are needed for train / validation / test splits")
        train, valid, test = product_split(n, split_seed)
        projection = RegionPCA.fit(regions, train, region_pca, seed=split_seed) if region_pca else None
        regions = projection.transform(regions) if projection else np.asarray(regions, dtype=np.float32)
        trainer = CrossModalTrainer(pooling, seed=seed, **trainer_kw).fit(
            regions[train], tokens[train], token_mask[train],
            validation=(regions[valid], tokens[valid], token_mask[valid]))
        test_scores = trainer.evaluate(regions[test], tokens[test], token_mask[test])
        image_vectors, _ = trainer.embed(regions)
        config = {"pooling": pooling, **trainer.params, "image_dim": int(regions.shape[2]),
                  "text_dim": int(tokens.shape[2]), "max_length": max_length, "seed": seed,
                  "split_seed": split_seed, "products": {"train": len(train), "validation": len(valid),
                                                         "test": len(test)},
                  "best_epoch": int(getattr(trainer, "best_epoch_", len(trainer.history_)))}
        return cls(trainer.model_, np.asarray(ids), [str(t) for t in texts], image_vectors.astype(np.float32),
                   projection, config, {f"test_{k}": float(v) for k, v in test_scores.items()})

    # -- querying -------------------------------------------------------------------
    def search(self, queries: list[str], k: int = 10, encoder=None) -> list[dict]:
        """For each query text: {"query", "ids", "texts", "scores"} of the k closest products."""
        import torch

        from sketchrec.embedders.text import TextEncoder
        from sketchrec.topk import topk
        if isinstance(queries, str):
            raise TypeError("queries must be a list of strings, not one string")
        if not queries:
            return []
        k = min(k, len(self.ids))
        encoder = encoder or TextEncoder(max_length=self.config.get("max_length", 32), progress=False)
        tokens, mask = encoder.encode_tokens(list(queries))
        with torch.inference_mode():
            q = self.model.encode_texts(torch.as_tensor(tokens), torch.as_tensor(mask)).numpy()
        top, scores = topk(q @ self.image_vectors.T, k)
        return [{"query": text, "ids": self.ids[t].tolist(), "texts": [self.texts[i] for i in t],
                 "scores": np.round(s, 6).tolist()} for text, t, s in zip(queries, top, scores)]

    # -- persistence ----------------------------------------------------------------
    def save(self, path: str | Path) -> Path:
        from safetensors.numpy import save_file

        from sketchrec.bundle import commit_version, new_version
        tmp = new_version(path)
        weights = {f"model.{k}": v.detach().cpu().numpy() for k, v in self.model.state_dict().items()}
        weights["image_vectors"] = np.ascontiguousarray(self.image_vectors)
        if self.projection is not None:
            weights["projection.mean"], weights["projection.components"] = (
                self.projection.mean, np.ascontiguousarray(self.projection.components))
        save_file(weights, str(tmp / "weights.safetensors"))
        (tmp / "catalogue.json").write_text(json.dumps({"ids": self.ids.tolist(), "texts": self.texts}))
        return commit_version(tmp, {"kind": KIND, "config": self.config, "metrics": self.metrics})

    @classmethod
    def load(cls, path: str | Path, verify: bool = True) -> "CatalogueSearch":
        from sketchrec.bundle import read_retrying
        return read_retrying(path, lambda root: cls._load_version(root, verify))

    @classmethod
    def _load_version(cls, root: Path, verify: bool) -> "CatalogueSearch":
        import torch
        from safetensors.numpy import load_file

        from sketchrec.bundle import read_version
        from sketchrec.models.crossmodal import CrossModalModel
        version, manifest = read_version(root, verify, kind=KIND)
        cfg = manifest["config"]
        arrays = load_file(str(version / "weights.safetensors"))
        model = CrossModalModel(cfg["image_dim"], cfg["text_dim"], pooling=cfg["pooling"], dim=cfg["dim"],
                                n=cfg["n"], k=cfg["k"], d=cfg["d"], temperature=cfg["temperature"],
                                sketch_head=cfg.get("sketch_head", False))
        model.load_state_dict({k[len("model."):]: torch.from_numpy(v) for k, v in arrays.items()
                               if k.startswith("model.")})
        model.eval()
        projection = (RegionPCA(arrays["projection.mean"], arrays["projection.components"])
                      if "projection.mean" in arrays else None)
        cat = json.loads((version / "catalogue.json").read_text())
        return cls(model, np.asarray(cat["ids"]), cat["texts"], arrays["image_vectors"], projection, cfg,
                   manifest.get("metrics", {}))
