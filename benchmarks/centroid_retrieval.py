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
results saved before it, labelled "base+CTL", are shown as "base+CTL (euclidean)"). A rerun keeps the trained
rows saved with the same --seeds and --epochs (per dataset) and trains only the missing ones.

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

import torch

from sketchrec.embedders import features
from sketchrec.eval.report import benchmark_parser, command
from sketchrec.retrieval.ctl import CTL_DISTANCES
from sketchrec.retrieval.tables import INSTANCE_SETS, centroid_report, fashion_galleries, instance_set, load_results

OUT = Path(__file__).resolve().parents[1] / "docs" / "benchmarks"
KS = (1, 5, 10, 20, 50)


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
    previous = load_results(results_file)
    for name in args.datasets:
        if name == "fashion-images":
            previous[name] = fashion_galleries(KS, args.seeds, args.fashion_epochs, args.threads, Path(args.cache),
                                               args.ctl_distances, previous.get(name))
        else:
            previous[name] = instance_set(name, KS, args.seeds, args.epochs, args.threads, args.ctl_distances,
                                          OUT / "centroid_retrieval", previous.get(name))
        results_file.write_text(json.dumps(list(previous.values()), indent=1, default=float))
    order = [*INSTANCE_SETS, "fashion-images"]
    results = sorted(previous.values(), key=lambda r: order.index(r["dataset"]) if r["dataset"] in order else 99)
    text = centroid_report(results, KS, args.threads, command("centroid_retrieval", seeds=args.seeds,
                                                              epochs=args.epochs, ctl_distances=args.ctl_distances))
    (OUT / "centroid_retrieval.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
