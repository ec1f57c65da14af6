"""Retrieval result tables: instance vs centroid evaluation of a split, Markdown tables of
per-seed runs, and the index cost table (Table 12 shape: gallery rows, size on disk, build
and query time, HNSW recall against exact search).

The instance-vs-centroid experiment of benchmarks/centroid_retrieval.py (issue 6) is here too:
`instance_set` (identities split in half, a SmallCNN trained per seed and per loss),
`fashion_galleries` (pooled image features, an MLP head on half of the colour+type groups),
`load_results` (the saved results, legacy row names renamed) and `centroid_report` (the page).
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from pathlib import Path

import numpy as np

from sketchrec.eval.report import machine_line, markdown_table, mean_std, peak_rss_mib
from sketchrec.retrieval import CentroidIndex, evaluate_retrieval


def retrieval_modes(ks, emb: np.ndarray, labels: np.ndarray, query: np.ndarray) -> dict[str, dict]:
    """`evaluate_retrieval` of the `query` rows against the rest, in instance and in centroid mode."""
    return {mode: evaluate_retrieval(emb[query], labels[query], emb[~query], labels[~query], mode=mode, ks=ks)
            for mode in ("instance", "centroid")}


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


def index_cost_lines(costs: list[dict]) -> list[str]:
    """The `index_costs` rows as a Markdown table."""
    lines = ["| mode | backend | gallery rows | index on disk | build s | total query s | recall@10 vs exact |",
             "|---|---|---|---|---|---|---|"]
    for c in costs:
        lines.append(f"| {c['mode']} | {c['backend']} | {c['rows']:,} | {c['disk_bytes'] / 2**20:.2f} MiB | "
                     f"{c['build_s']:.3f} | {c['query_s']:.4f} ({c['queries']:,} queries) | "
                     f"{c.get('recall@10', float('nan')) * 100:.1f} |".replace("nan", "—"))
    return lines


def method_lines(ks, title: str, methods: dict) -> list[str]:
    """A Markdown table of retrieval results, two rows (instance, centroid) per method: mean ± std over
    its runs (one per seed) of mAP and Acc@k, gallery rows, and training seconds where recorded."""
    rows = []
    for method, runs in methods.items():
        runs = runs if isinstance(runs, list) else [runs]
        for mode in ("instance", "centroid"):
            rows.append([f"{method} ({len(runs)} seed{'s' if len(runs) > 1 else ''})", mode,
                         *[mean_std([r[mode][m] for r in runs], digits=1) for m in ("mAP", *(f"Acc@{k}" for k in ks))],
                         runs[0][mode]["gallery_rows"],
                         mean_std([r["train_s"] for r in runs], 1, 1) if "train_s" in runs[0] else "—"])
    return markdown_table([title, "mode", "mAP", *(f"Acc@{k}" for k in ks), "gallery rows", "train s"], rows)


# -- the instance vs centroid experiment (benchmarks/centroid_retrieval.py) -----------------------
INSTANCE_SETS = ("coil20", "umist", "yaleb", "orl-faces")
LEGACY_CTL = "base+CTL"          # results saved before --ctl-distances: plain (Euclidean) distances
log = logging.getLogger("centroid_retrieval")


def ctl_methods(ctl_distances) -> list[tuple]:
    """(row name, `LossWeights`): the base model, then base + CTL for each distance."""
    from sketchrec.retrieval.ctl import LossWeights
    return [("base", LossWeights(ctl=0.0))] + [(f"base+CTL ({d})", LossWeights(ctl=1.0, ctl_distance=d))
                                               for d in ctl_distances]


def rename_legacy(methods_by_name: dict) -> dict:
    """Rows saved as "base+CTL" (before --ctl-distances) renamed "base+CTL (euclidean)"."""
    return {(f"{LEGACY_CTL} (euclidean)" if k == LEGACY_CTL else k): v for k, v in methods_by_name.items()}


def load_results(path: Path) -> dict:
    """The saved results of centroid_retrieval (a JSON list) by dataset, legacy CTL rows renamed; {} if none."""
    previous = {r["dataset"]: r for r in json.loads(path.read_text())} if path.exists() else {}
    for r in previous.values():
        if "methods" in r:
            r["methods"] = rename_legacy(r["methods"])
        for g in r.get("galleries", {}).values():
            if "held_out" in g:
                g["held_out"] = rename_legacy(g["held_out"])
    return previous


def trained_runs(ks, make_net, weights, seeds, train, test, query, **settings) -> list[tuple]:
    """Per seed: a network from `make_net()` trained with `weights` on (x, y) `train`, its
    retrieval modes on (x, y) `test` with those `query` rows, and the trainer."""
    from sketchrec.retrieval.ctl import RetrievalTrainer
    out = []
    for seed in seeds:
        trainer = RetrievalTrainer(make_net(), weights, lr=1e-3, seed=seed, progress=True, **settings).fit(*train)
        row = retrieval_modes(ks, trainer.embed(test[0]), test[1], query)
        row["train_s"] = trainer.report_.seconds
        out.append((row, trainer))
    return out


def reusable_rows(previous: dict | None, settings: dict) -> dict:
    """The trained rows {method: runs} of a saved result made with the same `settings` (seeds and
    epochs), which a rerun keeps instead of training again; {} when there are none."""
    if not previous or previous.get("settings") != settings:
        return {}
    rows = previous.get("methods") or previous.get("galleries", {}).get("colour+articleType", {}).get("held_out", {})
    return {k: v for k, v in rows.items() if k.startswith("base")}


def instance_set(name: str, ks, seeds, epochs: int, threads: int, ctl_distances, plot_dir: Path,
                 previous: dict | None = None) -> dict:
    """One instance set (COIL-20, UMIST, Extended Yale B, ORL): identities split in half (seed 0), a
    quarter of each test identity's images queries; raw pixels, then a SmallCNN trained per CTL method
    and seed; the first seed's loss curves plotted into `plot_dir`. Methods `previous` (the saved
    result) holds with the same seeds and epochs are kept, not trained again; its other methods too."""
    from sketchrec.data import registry
    from sketchrec.data.splits import identity_split, query_split
    from sketchrec.retrieval.ctl import SmallCNN
    from sketchrec.retrieval.transforms import image_tensor, shift_flip
    data = registry.load(name)
    x, y = image_tensor(data.images), data.labels
    train, test = identity_split(y, seed=0)
    query = query_split(y[test], seed=0)
    x_test, y_test = x[test], y[test]
    result = {"dataset": name, "images": int(len(y)), "identities": int(len(np.unique(y))),
              "train_identities": int(len(np.unique(y[train]))), "test_identities": int(len(np.unique(y_test))),
              "queries": int(query.sum()), "gallery": int((~query).sum()), "image_shape": list(x.shape[1:]),
              "methods": {}, "settings": {"seeds": list(seeds), "epochs": epochs}}
    result["methods"]["pixels"] = [retrieval_modes(ks, x_test.reshape(len(x_test), -1), y_test, query)]
    kept = reusable_rows(previous, result["settings"])
    result["methods"].update(kept)
    n_train_ids = result["train_identities"]
    for method, weights in ctl_methods(ctl_distances):
        if method in kept:
            log.info("%s %s: kept from the saved results (same seeds and epochs)", name, method)
            continue
        runs = []
        for seed, (row, trainer) in zip(seeds, trained_runs(
                ks, lambda: SmallCNN(1, 256), weights, seeds, (x[train], y[train]), (x_test, y_test), query,
                epochs=epochs, p=min(8, n_train_ids), m=8 if name != "orl-faces" else 4, threads=threads,
                augment=shift_flip)):
            row["history"] = trainer.report_.history
            runs.append(row)
            log.info("%s %s seed %d: instance mAP %.3f, centroid mAP %.3f (%.0f s)", name, method, seed,
                     row["instance"]["mAP"], row["centroid"]["mAP"], row["train_s"])
            if seed == seeds[0]:
                slug = method.replace("+", "-").replace(" (", "-").replace(")", "")
                trainer.plot_losses(Path(plot_dir) / f"{name}-{slug}-losses.png")
        result["methods"][method] = runs
    return result


def fashion_galleries(ks, seeds, epochs: int, threads: int, cache: Path, ctl_distances,
                      previous: dict | None = None) -> dict:
    """Fashion product photos (pooled EfficientNet-Lite0 features from `cache`): galleries by article
    type and by colour + article type (groups of at least 4), their index costs, and on colour + type an
    MLP head trained per CTL method and seed on half of the groups, tested on the other half (methods
    of `previous` with the same seeds and epochs kept, as in `instance_set`)."""
    from sketchrec.data.splits import identity_split, query_split
    from sketchrec.embedders import features
    from sketchrec.retrieval.ctl import MLPHead
    _, feats, _ = features.image_features("fashion-images", cache, threads)         # pooled
    meta = {k: features.catalogue_column("fashion-images", k) for k in ("articleType", "baseColour")}
    result = {"dataset": "fashion-images", "images": int(len(feats)), "galleries": {},
              "settings": {"seeds": list(seeds), "epochs": epochs}}
    kept = reusable_rows(previous, result["settings"])
    for grouping in ("articleType", "colour+articleType"):
        labels = meta["articleType"] if grouping == "articleType" else \
            np.array([f"{c}|{t}" for c, t in zip(meta["baseColour"], meta["articleType"])], dtype=object)
        values, counts = np.unique(labels.astype(str), return_counts=True)
        keep = np.isin(labels.astype(str), values[counts >= 4])          # a query and a gallery for each group
        lab = np.unique(labels[keep].astype(str), return_inverse=True)[1]
        f = feats[keep]
        query = query_split(lab, seed=0)
        g = {"groups": int(len(np.unique(lab))), "images": int(keep.sum()), "queries": int(query.sum()),
             "pretrained": retrieval_modes(ks, f, lab, query)}
        g["costs"] = index_costs(f[~query], lab[~query], f[query])
        if grouping == "colour+articleType":
            train, test = identity_split(lab, seed=0)
            q_test = query_split(lab[test], seed=0)
            g["held_out"] = {"train_groups": int(len(np.unique(lab[train]))),
                             "test_groups": int(len(np.unique(lab[test]))),
                             "pretrained": retrieval_modes(ks, f[test], lab[test], q_test), **kept}
            for method, weights in ctl_methods(ctl_distances):
                if method in kept:
                    continue
                g["held_out"][method] = [row for row, _ in trained_runs(
                    ks, lambda: MLPHead(f.shape[1], 1024, 256), weights, seeds, (f[train], lab[train]),
                    (f[test], lab[test]), q_test, epochs=epochs, p=16, m=4, threads=threads)]
        result["galleries"][grouping] = g
    return result


def centroid_report(results: list[dict], ks, threads: int, command_text: str) -> str:
    """The centroid_retrieval page: an instance-set section per dataset, then the fashion galleries
    (pretrained features, the held-out MLP head, the Table 12 index costs); `command_text` as run."""
    import torch
    lines = ["# Instance vs centroid retrieval, with and without the Centroid Triplet Loss", "",
             f"{machine_line()}; {threads} threads; torch {torch.__version__}. Command: " + command_text + ".", "",
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
        lines += method_lines(ks, "representation", r["methods"]) + [""]
    for r in results:
        if r["dataset"] != "fashion-images":
            continue
        lines += ["## Fashion product photos (EfficientNet-Lite0 ImageNet features)", ""]
        for grouping, g in r["galleries"].items():
            lines += [f"### Galleries by {grouping}", "",
                      f"{g['images']:,} images in {g['groups']} groups of at least 4; {g['queries']:,} queries.", ""]
            lines += method_lines(ks, "features", {"pretrained": g["pretrained"]}) + [""]
            if "held_out" in g:
                h = g["held_out"]
                lines += [f"Trained MLP head (1280 → 1024 → 256) on {h['train_groups']} groups, tested on the other "
                          f"{h['test_groups']}:", ""]
                lines += method_lines(ks, "features", {k: v for k, v in h.items()
                                                       if k == "pretrained" or k.startswith("base")}) + [""]
            lines += ["Table 12 shape — index over the gallery, all queries at once, k = 10:", "",
                      *index_cost_lines(g["costs"]), ""]
    lines += distance_comparison(results)
    lines.append(f"Peak RSS: {peak_rss_mib():,.0f} MiB.")
    return "\n".join(lines)


def distance_comparison(results: list[dict]) -> list[str]:
    """Where both CTL rows exist: mean mAP of base+CTL (squared) minus base+CTL (euclidean), instance
    and centroid mode, per dataset, with the larger of the two seed stds for scale."""
    rows = []
    for r in results:
        methods = r.get("methods") or r.get("galleries", {}).get("colour+articleType", {}).get("held_out", {})
        sq, eu = methods.get("base+CTL (squared)"), methods.get("base+CTL (euclidean)")
        if not sq or not eu:
            continue
        cells = []
        for mode in ("instance", "centroid"):
            a, b = ([100 * run[mode]["mAP"] for run in x] for x in (sq, eu))
            cells.append(f"{np.mean(a) - np.mean(b):+.1f} (std {max(np.std(a), np.std(b)):.1f})")
        rows.append([r["dataset"], *cells])
    if not rows:
        return []
    return ["## Squared against plain distances in the CTL", "",
            "mAP of base+CTL (squared) minus base+CTL (euclidean), same seeds and epochs:", "",
            *markdown_table(["dataset", "instance mAP", "centroid mAP"], rows), ""]
