"""Instance vs centroid retrieval, with and without the Centroid Triplet Loss (issue 6).

Instance sets (COIL-20, UMIST, Extended Yale B, ORL): identities are split in half,
seeded — a model is trained on one half and tested on the other, never seen in
training. Within each test identity a quarter of the images (seeded) are queries,
the rest its gallery. Representations: raw pixels (no training), the paper's base
model (BNNeck; label-smoothed CE + batch-hard triplet + centre loss) and the same
plus CTL, each trained from scratch (SmallCNN) with fixed settings — nothing is
tuned on the test identities. Every trained row is the mean ± std over --seeds. The CTL
rows are trained once per --ctl-distances: "squared" (the PhD thesis's Eq. 26, the default
of `LossWeights`) and "euclidean" (plain distances, what the rows before that option used;
results saved before it, labelled "base+CTL", are shown as "base+CTL (euclidean)").

Fashion product photos: EfficientNet-Lite0 ImageNet features (pooled, 1280-d),
galleries by article type and by colour + article type; the same query / gallery
split; an MLP head trained with / without CTL on half of the colour+type groups
and tested on the other half. Then the Table 12 shape: gallery rows, index size on
disk, total query time for instances vs centroids, exact vs HNSW, and HNSW's
recall@10 against exact search.

    python -m benchmarks.centroid_retrieval                # everything -> docs/benchmarks/centroid_retrieval.md
    python -m benchmarks.centroid_retrieval --datasets coil20 --seeds 0
    python -m benchmarks.centroid_retrieval --datasets coil20 --ctl-distances squared
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from sketchrec.data import registry
from sketchrec.data.splits import identity_split, query_split
from sketchrec.embedders import features
from sketchrec.eval.report import benchmark_parser, host_line, markdown_table, mean_std, peak_rss_mib
from sketchrec.retrieval import CentroidIndex, evaluate_retrieval
from sketchrec.retrieval.ctl import CTL_DISTANCES, LossWeights, MLPHead, RetrievalTrainer, SmallCNN

OUT = Path(__file__).resolve().parents[1] / "docs" / "benchmarks"
KS = (1, 5, 10, 20, 50)
INSTANCE_SETS = ("coil20", "umist", "yaleb", "orl-faces")
LEGACY_CTL = "base+CTL"          # results saved before --ctl-distances: plain (Euclidean) distances
log = logging.getLogger("centroid_retrieval")


# -- images ---------------------------------------------------------------------------------
def image_tensor(images: np.ndarray) -> np.ndarray:
    """(n, h, w) uint8 -> (n, 1, h', w') float32, standardised; ORL's 112 x 92 halved."""
    x = images.astype(np.float32) / 255.0
    if x.shape[1] > 64:
        h, w = x.shape[1] // 2 * 2, x.shape[2] // 2 * 2
        x = x[:, :h, :w].reshape(len(x), h // 2, 2, w // 2, 2).mean((2, 4))
    x = (x - x.mean()) / x.std()
    return x[:, None]


def shift_flip(batch: torch.Tensor, pad: int = 2) -> torch.Tensor:
    """Random translation by up to `pad` pixels and horizontal flip, per image (vectorised)."""
    b, _, h, w = batch.shape
    padded = torch.nn.functional.pad(batch, (pad, pad, pad, pad), mode="replicate")
    dy = torch.randint(0, 2 * pad + 1, (b, 1, 1))
    dx = torch.randint(0, 2 * pad + 1, (b, 1, 1))
    rows = (torch.arange(h).view(1, h, 1) + dy).expand(b, h, w)
    cols = torch.arange(w).view(1, 1, w).expand(b, h, w)
    flip = torch.rand(b, 1, 1) < 0.5
    cols = torch.where(flip, w - 1 - cols, cols) + dx
    idx = torch.arange(b).view(b, 1, 1).expand(b, h, w)
    return padded[idx, :, rows, cols].permute(0, 3, 1, 2)


def retrieval_rows(emb: np.ndarray, labels: np.ndarray, query: np.ndarray) -> dict[str, dict]:
    return {mode: evaluate_retrieval(emb[query], labels[query], emb[~query], labels[~query], mode=mode, ks=KS)
            for mode in ("instance", "centroid")}


def methods(ctl_distances) -> list[tuple[str, LossWeights]]:
    """(row name, loss weights): the base model, then base + CTL for each distance."""
    return [("base", LossWeights(ctl=0.0))] + [(f"base+CTL ({d})", LossWeights(ctl=1.0, ctl_distance=d))
                                               for d in ctl_distances]


def rename_legacy(methods_by_name: dict) -> dict:
    return {(f"{LEGACY_CTL} (euclidean)" if k == LEGACY_CTL else k): v for k, v in methods_by_name.items()}


def instance_set(name: str, seeds, epochs: int, threads: int, ctl_distances) -> dict:
    data = registry.load(name)
    x, y = image_tensor(data.images), data.labels
    train, test = identity_split(y, seed=0)
    query = query_split(y[test], seed=0)
    x_test, y_test = x[test], y[test]
    result = {"dataset": name, "images": int(len(y)), "identities": int(len(np.unique(y))),
              "train_identities": int(len(np.unique(y[train]))), "test_identities": int(len(np.unique(y_test))),
              "queries": int(query.sum()), "gallery": int((~query).sum()), "image_shape": list(x.shape[1:]),
              "methods": {}}
    result["methods"]["pixels"] = [retrieval_rows(x_test.reshape(len(x_test), -1), y_test, query)]
    n_train_ids = result["train_identities"]
    for method, weights in methods(ctl_distances):
        runs = []
        for seed in seeds:
            trainer = RetrievalTrainer(SmallCNN(1, 256), weights, epochs=epochs, p=min(8, n_train_ids),
                                       m=8 if name != "orl-faces" else 4, lr=1e-3, seed=seed, threads=threads,
                                       augment=shift_flip, progress=True).fit(x[train], y[train])
            row = retrieval_rows(trainer.embed(x_test), y_test, query)
            row["train_s"] = trainer.report_.seconds
            row["history"] = trainer.report_.history
            runs.append(row)
            log.info("%s %s seed %d: instance mAP %.3f, centroid mAP %.3f (%.0f s)", name, method, seed,
                     row["instance"]["mAP"], row["centroid"]["mAP"], row["train_s"])
            if seed == seeds[0]:
                slug = method.replace("+", "-").replace(" (", "-").replace(")", "")
                trainer.plot_losses(OUT / "centroid_retrieval" / f"{name}-{slug}-losses.png")
        result["methods"][method] = runs
    return result


# -- fashion --------------------------------------------------------------------------------
def fashion_features(threads: int, cache: Path) -> tuple[np.ndarray, dict]:
    _, pooled, _ = features.image_features("fashion-images", cache, threads)
    return pooled, {k: features.catalogue_column("fashion-images", k) for k in ("articleType", "baseColour")}


def index_costs(gallery: np.ndarray, groups: np.ndarray, queries: np.ndarray, truth_rows=None) -> list[dict]:
    """Table 12: rows, size on disk, total query time for instance / centroid x exact / HNSW."""
    out = []
    for mode in ("instance", "centroid"):
        exact_rows = None
        for backend in ("exact", "hnsw"):
            t0 = time.perf_counter()
            index = CentroidIndex(mode, backend=backend).fit(gallery, groups)
            build_s = time.perf_counter() - t0
            with tempfile.TemporaryDirectory() as tmp:
                path = index.save(Path(tmp) / "index")
                disk = sum(f.stat().st_size for f in path.iterdir())
            index.search(queries[:10], k=10)                       # warm-up
            t0 = time.perf_counter()
            hits = index.search(queries, k=10)
            query_s = time.perf_counter() - t0
            row = {"mode": mode, "backend": backend, "rows": int(len(index.vectors_)), "disk_bytes": int(disk),
                   "build_s": build_s, "query_s": query_s, "queries": int(len(queries))}
            if backend == "exact":
                exact_rows = hits.rows
            else:
                k = min(10, len(index.vectors_))
                row["recall@10"] = float(np.mean([len(set(a[:k]) & set(b[:k])) / k
                                                  for a, b in zip(exact_rows, hits.rows)]))
            out.append(row)
    return out


def fashion(seeds, epochs: int, threads: int, cache: Path, ctl_distances) -> dict:
    feats, meta = fashion_features(threads, cache)
    result = {"dataset": "fashion-images", "images": int(len(feats)), "galleries": {}}
    for grouping in ("articleType", "colour+articleType"):
        labels = meta["articleType"] if grouping == "articleType" else \
            np.array([f"{c}|{t}" for c, t in zip(meta["baseColour"], meta["articleType"])], dtype=object)
        values, counts = np.unique(labels.astype(str), return_counts=True)
        keep = np.isin(labels.astype(str), values[counts >= 4])          # a query and a gallery for each group
        lab = np.unique(labels[keep].astype(str), return_inverse=True)[1]
        f = feats[keep]
        query = query_split(lab, seed=0)
        g = {"groups": int(len(np.unique(lab))), "images": int(keep.sum()), "queries": int(query.sum()),
             "pretrained": retrieval_rows(f, lab, query)}
        g["costs"] = index_costs(f[~query], lab[~query], f[query])
        if grouping == "colour+articleType":
            train, test = identity_split(lab, seed=0)
            q_test = query_split(lab[test], seed=0)
            g["held_out"] = {"train_groups": int(len(np.unique(lab[train]))),
                             "test_groups": int(len(np.unique(lab[test]))),
                             "pretrained": retrieval_rows(f[test], lab[test], q_test)}
            for method, weights in methods(ctl_distances):
                runs = []
                for seed in seeds:
                    trainer = RetrievalTrainer(MLPHead(f.shape[1], 1024, 256), weights, epochs=epochs,
                                               p=16, m=4, lr=1e-3, seed=seed, threads=threads,
                                               progress=True).fit(f[train], lab[train])
                    row = retrieval_rows(trainer.embed(f[test]), lab[test], q_test)
                    row["train_s"] = trainer.report_.seconds
                    runs.append(row)
                g["held_out"][method] = runs
        result["galleries"][grouping] = g
    return result


# -- report ---------------------------------------------------------------------------------
def method_lines(title: str, methods: dict) -> list[str]:
    rows = []
    for method, runs in methods.items():
        runs = runs if isinstance(runs, list) else [runs]
        for mode in ("instance", "centroid"):
            rows.append([f"{method} ({len(runs)} seed{'s' if len(runs) > 1 else ''})", mode,
                         *[mean_std([r[mode][m] for r in runs], digits=1) for m in ("mAP", *(f"Acc@{k}" for k in KS))],
                         runs[0][mode]["gallery_rows"],
                         mean_std([r["train_s"] for r in runs], 1, 1) if "train_s" in runs[0] else "—"])
    return markdown_table([title, "mode", "mAP", *(f"Acc@{k}" for k in KS), "gallery rows", "train s"], rows)


def report(results: list[dict], args) -> str:
    lines = ["# Instance vs centroid retrieval, with and without the Centroid Triplet Loss", "",
             f"{host_line()}, {args.threads} threads; torch {torch.__version__}. Command: `python benchmarks/centroid_retrieval.py "
             f"--seeds {' '.join(map(str, args.seeds))} --epochs {args.epochs} "
             f"--ctl-distances {' '.join(args.ctl_distances)}`.", "",
             "Percentages. Test identities are never seen in training; a quarter of each test identity's images "
             "are queries, the rest its gallery. Instance mode ranks every gallery image (mAP over all of the "
             "identity's images); centroid mode ranks one centroid per identity (one relevant row: AP = reciprocal "
             "rank). With fewer than 50 centroids Acc@50 is trivially 100. Settings are fixed, not tuned on test. "
             "base+CTL (squared): the Centroid Triplet Loss on squared distances (PhD thesis Eq. 26); "
             "(euclidean): on plain distances.", ""]
    for r in results:
        if r["dataset"] == "fashion-images":
            continue
        lines += [f"## {r['dataset']}", "",
                  f"{r['images']:,} images of {r['identities']} identities ({'×'.join(map(str, r['image_shape'][1:]))} "
                  f"px); trained on {r['train_identities']}, tested on {r['test_identities']}: {r['queries']} queries, "
                  f"{r['gallery']} gallery images.", ""]
        lines += method_lines("representation", r["methods"]) + [""]
    for r in results:
        if r["dataset"] != "fashion-images":
            continue
        lines += ["## Fashion product photos (EfficientNet-Lite0 ImageNet features)", ""]
        for grouping, g in r["galleries"].items():
            lines += [f"### Galleries by {grouping}", "",
                      f"{g['images']:,} images in {g['groups']} groups of at least 4; {g['queries']:,} queries.", ""]
            lines += method_lines("features", {"pretrained": g["pretrained"]}) + [""]
            if "held_out" in g:
                h = g["held_out"]
                lines += [f"Trained MLP head (1280 → 1024 → 256) on {h['train_groups']} groups, tested on the other "
                          f"{h['test_groups']}:", ""]
                lines += method_lines("features", {k: v for k, v in h.items()
                                                   if k == "pretrained" or k.startswith("base")}) + [""]
            lines += ["Table 12 shape — index over the gallery, all queries at once, k = 10:", "",
                      "| mode | backend | gallery rows | index on disk | build s | total query s | recall@10 vs exact |",
                      "|---|---|---|---|---|---|---|"]
            for c in g["costs"]:
                lines.append(f"| {c['mode']} | {c['backend']} | {c['rows']:,} | {c['disk_bytes'] / 2**20:.2f} MiB | "
                             f"{c['build_s']:.3f} | {c['query_s']:.4f} ({c['queries']:,} queries) | "
                             f"{c.get('recall@10', float('nan')) * 100:.1f} |".replace("nan", "—"))
            lines.append("")
    lines.append(f"Peak RSS: {peak_rss_mib():,.0f} MiB.")
    return "\n".join(lines)


def main() -> None:
    parser = benchmark_parser(__doc__, datasets=[*INSTANCE_SETS, "fashion-images"], seeds=[0, 1, 2], epochs=40,
                              threads=2)
    parser.add_argument("--fashion-epochs", type=int, default=30)
    parser.add_argument("--ctl-distances", nargs="+", choices=CTL_DISTANCES, default=list(CTL_DISTANCES),
                        help="train a base+CTL row for each of these CTL distances (default: both)")
    parser.add_argument("--cache", default=str(features.DEFAULT_CACHE),
                        help="folder of the cached fashion image features (sketchrec.embedders.features)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(args.threads)
    (OUT / "centroid_retrieval").mkdir(parents=True, exist_ok=True)
    results_file = OUT / "centroid_retrieval.json"
    previous = {r["dataset"]: r for r in json.loads(results_file.read_text())} if results_file.exists() else {}
    for r in previous.values():
        if "methods" in r:
            r["methods"] = rename_legacy(r["methods"])
        for g in r.get("galleries", {}).values():
            if "held_out" in g:
                g["held_out"] = rename_legacy(g["held_out"])
    for name in args.datasets:
        if name == "fashion-images":
            previous[name] = fashion(args.seeds, args.fashion_epochs, args.threads, Path(args.cache),
                                     args.ctl_distances)
        else:
            previous[name] = instance_set(name, args.seeds, args.epochs, args.threads, args.ctl_distances)
        results_file.write_text(json.dumps(list(previous.values()), indent=1, default=float))
    order = [*INSTANCE_SETS, "fashion-images"]
    results = sorted(previous.values(), key=lambda r: order.index(r["dataset"]) if r["dataset"] in order else 99)
    text = report(results, args)
    (OUT / "centroid_retrieval.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
