"""Text <-> image retrieval of fashion products: mean vs self-attention vs T-EMDE pooling (issue 7).

Data: the 9,583 fashion photos and their titles. Image side: EfficientNet-Lite0
(ImageNet) 7 × 7 feature-map cells (1280-d) as regions; text side: MiniLM token
embeddings of the title. Both precomputed once (sketchrec.embedders.features). Splits are
product-disjoint (70 / 10 / 20 %, seeded, the same for every model); each model is
trained with symmetric InfoNCE, keeps its best epoch by validation R-sum, and is
tested once. Metrics: R@1/5/10 and MRR for image -> text and text -> image over the
test products; training seconds per epoch; inference seconds for the whole test set
(both encoders + the similarity matrix). Mean ± std over --seeds.

    python -m benchmarks.crossmodal_temde                 # -> docs/benchmarks/crossmodal_temde.md
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch

from sketchrec.embedders.features import DEFAULT_CACHE, image_features, text_tokens
from sketchrec.eval.report import benchmark_parser, write_page
from sketchrec.retrieval.catalogue import RegionPCA, product_split
from sketchrec.retrieval.crossmodal import POOLINGS
from sketchrec.retrieval.crossmodal_runs import best_config, report, run, tune, tune_baselines

OUT = Path(__file__).resolve().parents[1] / "docs" / "benchmarks"
log = logging.getLogger("crossmodal_temde")


def main() -> None:
    parser = benchmark_parser(__doc__, seeds=[0, 1, 2], epochs=20, threads=2)
    parser.add_argument("--poolings", nargs="+", default=list(POOLINGS), choices=POOLINGS)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--d", type=int, default=32)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--region-pca", type=int, default=256, help="0: the full 1280-d regions")
    parser.add_argument("--cache-dir", default=str(DEFAULT_CACHE))
    parser.add_argument("--tune", action="store_true", help="validation search over T-EMDE settings (TEMDE_GRID), "
                                                            "then the best one on every seed")
    parser.add_argument("--tune-baselines", action="store_true", help="the same validation search for mean and "
                        "attention pooling (BASELINE_GRID), then the best setting of each on every seed")
    parser.add_argument("--tune-only", action="store_true", help="with --tune / --tune-baselines: stop after the search")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(args.threads)
    cache = Path(args.cache_dir)
    _, _, regions = image_features(cache_dir=cache, threads=args.threads)
    tokens, mask = text_tokens(cache_dir=cache, threads=args.threads)
    parts = product_split(len(regions))
    if args.region_pca:
        regions = RegionPCA(args.region_pca).fit(regions, parts[0]).transform(regions)
    else:
        log.info("loading regions into memory (%.1f GiB float16)", regions.nbytes / 2**30)
        regions = np.asarray(regions)
    results_file, tuning_file = OUT / "crossmodal_temde.json", OUT / "crossmodal_temde_tuning.json"
    baseline_file = OUT / "crossmodal_baseline_tuning.json"
    rows = json.loads(results_file.read_text()) if results_file.exists() else []
    tuning = json.loads(tuning_file.read_text()) if tuning_file.exists() else []
    base_tuning = json.loads(baseline_file.read_text()) if baseline_file.exists() else []
    data = (regions, tokens, mask)
    poolings = list(args.poolings)
    if args.tune:
        if not tuning:
            tuning = tune(data, parts, args)
            tuning_file.write_text(json.dumps(tuning, indent=1, default=float))
        poolings.append("temde-tuned")
    if args.tune_baselines:
        if not base_tuning:
            base_tuning = tune_baselines(data, parts, args, rows)
            baseline_file.write_text(json.dumps(base_tuning, indent=1, default=float))
        poolings += ["mean-tuned", "attention-tuned"]
    if args.tune_only:
        return
    chosen = {"temde-tuned": best_config(tuning),
              **{f"{p}-tuned": best_config([t for t in base_tuning if t["pooling"] == p]) for p in ("mean", "attention")}}
    done = {(r["pooling"], r["seed"]) for r in rows}
    for seed in args.seeds:
        for pooling in poolings:
            if (pooling, seed) in done:
                continue
            if pooling in ("mean-tuned", "attention-tuned") and chosen[pooling] == {}:
                # the a-priori setting won on validation: the tuned model is the a-priori one
                base = [r for r in rows if r["pooling"] == pooling.split("-")[0] and r["seed"] == seed]
                if base:
                    rows.append({**base[0], "pooling": pooling, "config": {}})
                    continue
            rows.append(run(pooling, seed, data, parts, args, chosen.get(pooling)))
            log.info("%s seed %d: %s", pooling, seed, rows[-1]["test"])
            results_file.write_text(json.dumps(rows, indent=1, default=float))
    results_file.write_text(json.dumps(rows, indent=1, default=float))
    text = report(rows, args, [len(p) for p in parts], tuning, base_tuning)
    write_page(OUT / "crossmodal_temde.md", text + "\n", echo=True)


if __name__ == "__main__":
    main()
