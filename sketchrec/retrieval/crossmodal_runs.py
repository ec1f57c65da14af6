"""Seeded runs of the cross-modal (text <-> image) retrieval models, and their page: train a pooling
with `CrossModalTrainer` (best epoch by validation R-sum), test it once, search settings on the
validation split only (T-EMDE's TEMDE_GRID, the baselines' BASELINE_GRID), and the Markdown report
of mean ± std over seeds that benchmarks/crossmodal_temde.py writes.

`settings` below is the benchmark's argument namespace: dim, n, k, d, temperature, lr, epochs,
batch_size, threads (and, for the report's header, seeds, region_pca, tune, tune_baselines).
"""

from __future__ import annotations

import logging
import time

import numpy as np
import torch

from sketchrec.eval.report import host_line, markdown_table, mean_std, peak_rss_mib
from sketchrec.retrieval.crossmodal import POOLINGS, CrossModalTrainer, retrieval_scores

TEST_METRICS = [(d, m) for d in ("i2t", "t2i") for m in ("R@1", "R@5", "R@10", "MRR")]
log = logging.getLogger(__name__)


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


def fit(pooling: str, seed: int, data, parts, settings, config: dict | None = None) -> CrossModalTrainer:
    regions, tokens, mask = data
    train, valid, _ = parts
    settings = dict(dim=settings.dim, n=settings.n, k=settings.k, d=settings.d, temperature=settings.temperature, lr=settings.lr)
    trainer = CrossModalTrainer(pooling.split("-")[0], **{**settings, **(config or {})},
                                epochs=settings.epochs, batch_size=settings.batch_size, seed=seed, threads=settings.threads,
                                progress=True)
    return trainer.fit(regions[train], tokens[train], mask[train],
                       validation=(regions[valid], tokens[valid], mask[valid]))


def validation_row(trainer, config: dict, **extra) -> dict:
    return {**extra, "config": config, "valid_rsum": max(h["valid_rsum"] for h in trainer.history_),
            "best_epoch": trainer.best_epoch_, "epoch_s": float(np.mean([h["seconds"] for h in trainer.history_]))}


def tune(data, parts, settings) -> list[dict]:
    """Every TEMDE_GRID setting on seed 0: the best validation R-sum and its epoch (test never looked at)."""
    out = [validation_row(fit("temde", 0, data, parts, settings, config), config) for config in TEMDE_GRID]
    for row in out:
        log.info("tuning %s: validation R-sum %.1f", row["config"], 100 * row["valid_rsum"])
    return out


def tune_baselines(data, parts, settings, rows) -> list[dict]:
    """BASELINE_GRID for mean and attention pooling on seed 0 (the a-priori point from seed 0's run)."""
    out = []
    for pooling in ("mean", "attention"):
        ref = [r for r in rows if r["pooling"] == pooling and r["seed"] == 0]
        if ref:
            out.append({"pooling": pooling, "config": {}, "valid_rsum": max(h["valid_rsum"] for h in ref[0]["history"]),
                        "best_epoch": ref[0]["best_epoch"], "epoch_s": ref[0]["epoch_s"]})
        for config in BASELINE_GRID:
            out.append(validation_row(fit(pooling, 0, data, parts, settings, config), config, pooling=pooling))
            log.info("tuning %s %s: validation R-sum %.1f", pooling, config, 100 * out[-1]["valid_rsum"])
    return out


def run(pooling: str, seed: int, data, parts, settings, config: dict | None = None) -> dict:
    regions, tokens, mask = data
    test = parts[2]
    trainer = fit(pooling, seed, data, parts, settings, config)
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


def report(rows: list[dict], settings, sizes, tuning: list[dict], base_tuning: list[dict] = ()) -> str:
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
             f"{host_line()}, {settings.threads} threads; torch {torch.__version__}. Command: `python benchmarks/crossmodal_temde.py "
             f"--seeds {' '.join(map(str, settings.seeds))} --epochs {settings.epochs} --region-pca {settings.region_pca}"
             f"{' --tune' if settings.tune else ''}{' --tune-baselines' if settings.tune_baselines else ''}`.", "",
             f"Products: {sizes[0]:,} train / {sizes[1]:,} validation / {sizes[2]:,} test (disjoint). Image regions: "
             f"EfficientNet-Lite0 7 × 7 × 1280{f' (PCA to {settings.region_pca}, fitted on training products)' if settings.region_pca else ''}; text: MiniLM token embeddings of the title. Mean / attention: a "
             f"per-token Linear to {settings.dim}-d + LayerNorm, pooling, a Linear; T-EMDE: LayerNorm, its own per-token "
             f"projection to N × D, sketch N = {settings.n} × K = {settings.k} (D = {settings.d}, "
             f"τ = {settings.temperature}). InfoNCE, batch {settings.batch_size}, AdamW lr {settings.lr}, best epoch by "
             "validation R-sum. Percentages, mean ± std over seeds.", "",
             *markdown_table(["pooling", "seeds", *(f"{d} {m}" for d, m in TEST_METRICS), "R-sum", "s / epoch",
                              "test inference s", "parameters", "best epochs"], table)]
    if tuning:
        lines += ["", f"T-EMDE settings tried with `--tune` (seed 0, {settings.epochs} epochs; selection on the validation "
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
