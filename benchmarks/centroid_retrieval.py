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
from pathlib import Path

import numpy as np
import torch

from sketchrec.data import registry
from sketchrec.data.splits import identity_split, query_split
from sketchrec.embedders import features
from sketchrec.eval.report import benchmark_parser, command, host_line, peak_rss_mib
from sketchrec.retrieval.ctl import CTL_DISTANCES, LossWeights, MLPHead, RetrievalTrainer, SmallCNN
from sketchrec.retrieval.tables import index_cost_lines, index_costs, method_lines, retrieval_modes
from sketchrec.retrieval.transforms import image_tensor, shift_flip

OUT = Path(__file__).resolve().parents[1] / "docs" / "benchmarks"
KS = (1, 5, 10, 20, 50)
INSTANCE_SETS = ("coil20", "umist", "yaleb", "orl-faces")
LEGACY_CTL = "base+CTL"          # results saved before --ctl-distances: plain (Euclidean) distances
log = logging.getLogger("centroid_retrieval")


def methods(ctl_distances) -> list[tuple[str, LossWeights]]:
    """(row name, loss weights): the base model, then base + CTL for each distance."""
    return [("base", LossWeights(ctl=0.0))] + [(f"base+CTL ({d})", LossWeights(ctl=1.0, ctl_distance=d))
                                               for d in ctl_distances]


def rename_legacy(methods_by_name: dict) -> dict:
    return {(f"{LEGACY_CTL} (euclidean)" if k == LEGACY_CTL else k): v for k, v in methods_by_name.items()}


def trained_runs(make_net, weights, seeds, train, test, query, **settings) -> list[tuple[dict, RetrievalTrainer]]:
    """Per seed: a network from `make_net()` trained with `weights` on (x, y) `train`, its
    retrieval modes on (x, y) `test` with those `query` rows, and the trainer."""
    out = []
    for seed in seeds:
        trainer = RetrievalTrainer(make_net(), weights, lr=1e-3, seed=seed, progress=True, **settings).fit(*train)
        row = retrieval_modes(KS, trainer.embed(test[0]), test[1], query)
        row["train_s"] = trainer.report_.seconds
        out.append((row, trainer))
    return out


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
    result["methods"]["pixels"] = [retrieval_modes(KS, x_test.reshape(len(x_test), -1), y_test, query)]
    n_train_ids = result["train_identities"]
    for method, weights in methods(ctl_distances):
        runs = []
        for seed, (row, trainer) in zip(seeds, trained_runs(
                lambda: SmallCNN(1, 256), weights, seeds, (x[train], y[train]), (x_test, y_test), query, epochs=epochs,
                p=min(8, n_train_ids), m=8 if name != "orl-faces" else 4, threads=threads, augment=shift_flip)):
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
def fashion(seeds, epochs: int, threads: int, cache: Path, ctl_distances) -> dict:
    _, feats, _ = features.image_features("fashion-images", cache, threads)         # pooled
    meta = {k: features.catalogue_column("fashion-images", k) for k in ("articleType", "baseColour")}
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
             "pretrained": retrieval_modes(KS, f, lab, query)}
        g["costs"] = index_costs(f[~query], lab[~query], f[query])
        if grouping == "colour+articleType":
            train, test = identity_split(lab, seed=0)
            q_test = query_split(lab[test], seed=0)
            g["held_out"] = {"train_groups": int(len(np.unique(lab[train]))),
                             "test_groups": int(len(np.unique(lab[test]))),
                             "pretrained": retrieval_modes(KS, f[test], lab[test], q_test)}
            for method, weights in methods(ctl_distances):
                g["held_out"][method] = [row for row, _ in trained_runs(
                    lambda: MLPHead(f.shape[1], 1024, 256), weights, seeds, (f[train], lab[train]), (f[test], lab[test]), q_test,
                    epochs=epochs, p=16, m=4, threads=threads)]
        result["galleries"][grouping] = g
    return result


# -- report ---------------------------------------------------------------------------------
def report(results: list[dict], args) -> str:
    lines = ["# Instance vs centroid retrieval, with and without the Centroid Triplet Loss", "",
             f"{host_line()}, {args.threads} threads; torch {torch.__version__}. Command: "
             + command("centroid_retrieval", seeds=args.seeds, epochs=args.epochs, ctl_distances=args.ctl_distances) + ".", "",
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
        lines += method_lines(KS, "representation", r["methods"]) + [""]
    for r in results:
        if r["dataset"] != "fashion-images":
            continue
        lines += ["## Fashion product photos (EfficientNet-Lite0 ImageNet features)", ""]
        for grouping, g in r["galleries"].items():
            lines += [f"### Galleries by {grouping}", "",
                      f"{g['images']:,} images in {g['groups']} groups of at least 4; {g['queries']:,} queries.", ""]
            lines += method_lines(KS, "features", {"pretrained": g["pretrained"]}) + [""]
            if "held_out" in g:
                h = g["held_out"]
                lines += [f"Trained MLP head (1280 → 1024 → 256) on {h['train_groups']} groups, tested on the other "
                          f"{h['test_groups']}:", ""]
                lines += method_lines(KS, "features", {k: v for k, v in h.items()
                                                   if k == "pretrained" or k.startswith("base")}) + [""]
            lines += ["Table 12 shape — index over the gallery, all queries at once, k = 10:", "",
                      *index_cost_lines(g["costs"]), ""]
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
