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
import time
from pathlib import Path

import numpy as np
import torch

from sketchrec.embedders.features import DEFAULT_CACHE, image_features, text_tokens
from sketchrec.eval.report import benchmark_parser, host_line, markdown_table, mean_std, peak_rss_mib
from sketchrec.retrieval.catalogue import RegionPCA, product_split
from sketchrec.retrieval.crossmodal import POOLINGS, CrossModalTrainer, retrieval_scores

OUT = Path(__file__).resolve().parents[1] / "docs" / "benchmarks"
TEST_METRICS = [(d, m) for d in ("i2t", "t2i") for m in ("R@1", "R@5", "R@10", "MRR")]
log = logging.getLogger("crossmodal_temde")


# T-EMDE settings tried on the validation split (seed 0) by --tune; the best by validation R-sum
# is then run on every seed as "temde-tuned". The a-priori setting is the first.
TEMDE_GRID = [
    {"n": 16, "k": 32, "d": 32, "temperature": 1.0},
    {"n": 16, "k": 32, "d": 32, "temperature": 0.3},
    {"n": 16, "k": 32, "d": 32, "temperature": 0.1},
    {"n": 16, "k": 32, "d": 32, "temperature": 3.0},
    {"n": 32, "k": 32, "d": 32, "temperature": 1.0},
    {"n": 16, "k": 32, "d": 32, "temperature": 1.0, "sketch_head": True},
    {"n": 16, "k": 32, "d": 32, "temperature": 0.3, "lr": 2e-3},
]


# The same validation search for the baselines (--tune-baselines), so that a tuned T-EMDE is not
# compared with untuned baselines: the a-priori setting ({}: seed 0's run) and these.
BASELINE_GRID = [{"lr": 1e-3}, {"lr": 2e-3}, {"dim": 1024}]


def fit(pooling: str, seed: int, data, parts, args, config: dict | None = None) -> CrossModalTrainer:
    regions, tokens, mask = data
    train, valid, _ = parts
    settings = dict(dim=args.dim, n=args.n, k=args.k, d=args.d, temperature=args.temperature, lr=args.lr)
    trainer = CrossModalTrainer(pooling.split("-")[0], **{**settings, **(config or {})},
                                epochs=args.epochs, batch_size=args.batch_size, seed=seed, threads=args.threads,
                                progress=True)
    return trainer.fit(regions[train], tokens[train], mask[train],
                       validation=(regions[valid], tokens[valid], mask[valid]))


def validation_row(trainer, config: dict, **extra) -> dict:
    return {**extra, "config": config, "valid_rsum": max(h["valid_rsum"] for h in trainer.history_),
            "best_epoch": trainer.best_epoch_, "epoch_s": float(np.mean([h["seconds"] for h in trainer.history_]))}


def tune(data, parts, args) -> list[dict]:
    """Every TEMDE_GRID setting on seed 0: the best validation R-sum and its epoch (test never looked at)."""
    out = [validation_row(fit("temde", 0, data, parts, args, config), config) for config in TEMDE_GRID]
    for row in out:
        log.info("tuning %s: validation R-sum %.1f", row["config"], 100 * row["valid_rsum"])
    return out


def tune_baselines(data, parts, args, rows) -> list[dict]:
    """BASELINE_GRID for mean and attention pooling on seed 0 (the a-priori point from seed 0's run)."""
    out = []
    for pooling in ("mean", "attention"):
        ref = [r for r in rows if r["pooling"] == pooling and r["seed"] == 0]
        if ref:
            out.append({"pooling": pooling, "config": {}, "valid_rsum": max(h["valid_rsum"] for h in ref[0]["history"]),
                        "best_epoch": ref[0]["best_epoch"], "epoch_s": ref[0]["epoch_s"]})
        for config in BASELINE_GRID:
            out.append(validation_row(fit(pooling, 0, data, parts, args, config), config, pooling=pooling))
            log.info("tuning %s %s: validation R-sum %.1f", pooling, config, 100 * out[-1]["valid_rsum"])
    return out


def run(pooling: str, seed: int, data, parts, args, config: dict | None = None) -> dict:
    regions, tokens, mask = data
    test = parts[2]
    trainer = fit(pooling, seed, data, parts, args, config)
    test_regions = np.asarray(regions[test], dtype=np.float32)
    t0 = time.perf_counter()
    img, txt = trainer.embed(test_regions, tokens[test], mask[test])
    scores = retrieval_scores(img, txt)
    infer_s = time.perf_counter() - t0
    params = sum(p.numel() for p in trainer.model_.parameters())
    return {"pooling": pooling, "seed": seed, "config": config, "test": scores, "best_epoch": trainer.best_epoch_,
            "epochs_run": len(trainer.history_), "epoch_s": float(np.mean([h["seconds"] for h in trainer.history_])),
            "inference_s": infer_s, "parameters": int(params), "history": trainer.history_}


def describe(config: dict) -> str:
    extra = [f"{k} {v}" for k, v in config.items() if k not in ("n", "k", "d", "temperature")]
    return (f"N {config['n']} × K {config['k']}, D {config['d']}, τ {config['temperature']}"
            + (f", {', '.join(extra)}" if extra else ""))


def best_config(tuning: list[dict]) -> dict | None:
    return max(tuning, key=lambda t: t["valid_rsum"])["config"] if tuning else None


def describe_base(config: dict | None) -> str:
    return ", ".join(f"{k} {v}" for k, v in config.items()) if config else "a-priori setting kept"


def report(rows: list[dict], args, sizes, tuning: list[dict], base_tuning: list[dict] = ()) -> str:
    best = best_config(tuning)
    base_best = {p: best_config([t for t in base_tuning if t["pooling"] == p]) for p in ("mean", "attention")}
    label = {"mean": "mean pooling", "attention": "self-attention pooling (SGRAF-style)", "temde": "T-EMDE (a priori)",
             "temde-tuned": f"T-EMDE, tuned on validation ({describe(best)})" if best else "",
             "mean-tuned": f"mean pooling, tuned on validation ({describe_base(base_best['mean'])})",
             "attention-tuned": f"self-attention pooling, tuned on validation ({describe_base(base_best['attention'])})"}
    table = []
    for pooling in (*POOLINGS, "mean-tuned", "attention-tuned", "temde-tuned"):
        rs = [r for r in rows if r["pooling"] == pooling]
        if rs:
            table.append([label[pooling], len(rs), *[mean_std([r["test"][f"{d}_{m}"] for r in rs], digits=1)
                                                     for d, m in TEST_METRICS],
                          mean_std([r["test"]["rsum"] for r in rs], digits=1), mean_std([r["epoch_s"] for r in rs], 1, 2),
                          mean_std([r["inference_s"] for r in rs], 1, 3), f"{rs[0]['parameters']:,}",
                          ", ".join(str(r["best_epoch"]) for r in rs)])
    lines = ["# Cross-modal retrieval on fashion products: mean vs self-attention vs T-EMDE", "",
             f"{host_line()}, {args.threads} threads; torch {torch.__version__}. Command: `python benchmarks/crossmodal_temde.py "
             f"--seeds {' '.join(map(str, args.seeds))} --epochs {args.epochs} --region-pca {args.region_pca}"
             f"{' --tune' if args.tune else ''}{' --tune-baselines' if args.tune_baselines else ''}`.", "",
             f"Products: {sizes[0]:,} train / {sizes[1]:,} validation / {sizes[2]:,} test (disjoint). Image regions: "
             f"EfficientNet-Lite0 7 × 7 × 1280{f' (PCA to {args.region_pca}, fitted on training products)' if args.region_pca else ''}; text: MiniLM token embeddings of the title. Mean / attention: a "
             f"per-token Linear to {args.dim}-d + LayerNorm, pooling, a Linear; T-EMDE: LayerNorm, its own per-token "
             f"projection to N × D, sketch N = {args.n} × K = {args.k} (D = {args.d}, "
             f"τ = {args.temperature}). InfoNCE, batch {args.batch_size}, AdamW lr {args.lr}, best epoch by "
             "validation R-sum. Percentages, mean ± std over seeds.", "",
             *markdown_table(["pooling", "seeds", *(f"{d} {m}" for d, m in TEST_METRICS), "R-sum", "s / epoch",
                              "test inference s", "parameters", "best epochs"], table)]
    if tuning:
        lines += ["", f"T-EMDE settings tried with `--tune` (seed 0, {args.epochs} epochs; selection on the validation "
                  "products only, the test products are never scored here):", "",
                  "| setting | best validation R-sum | best epoch | s / epoch |", "|---|---|---|---|"]
        lines += [f"| {describe(t['config'])}{' **(chosen)**' if t['config'] == best else ''} | "
                  f"{100 * t['valid_rsum']:.1f} | {t['best_epoch']} | {t['epoch_s']:.2f} |" for t in tuning]
        ref = [r for r in rows if r["pooling"] == "attention" and r["seed"] == 0]
        if ref:
            lines.append(f"| (self-attention pooling, for reference) | "
                         f"{100 * max(h['valid_rsum'] for h in ref[0]['history']):.1f} | {ref[0]['best_epoch']} | "
                         f"{ref[0]['epoch_s']:.2f} |")
    if base_tuning:
        lines += ["", "Baseline settings tried with `--tune-baselines` (seed 0, the same validation selection):", "",
                  "| pooling | setting | best validation R-sum | best epoch | s / epoch |", "|---|---|---|---|---|"]
        lines += [f"| {t['pooling']} | {describe_base(t['config']) if t['config'] else 'a priori'}"
                  f"{' **(chosen)**' if t['config'] == base_best[t['pooling']] else ''} | {100 * t['valid_rsum']:.1f} | "
                  f"{t['best_epoch']} | {t['epoch_s']:.2f} |" for t in base_tuning]
    lines += ["", f"Peak RSS {peak_rss_mib():,.0f} MiB."]
    return "\n".join(lines)


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
    (OUT / "crossmodal_temde.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
