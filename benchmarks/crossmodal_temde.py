"""Text <-> image retrieval of fashion products: mean vs self-attention vs T-EMDE pooling (issue 7).

Data: the 9,583 fashion photos and their titles. Image side: EfficientNet-Lite0
(ImageNet) 7 × 7 feature-map cells (1280-d) as regions; text side: MiniLM token
embeddings of the title. Both precomputed once (benchmarks/_fashion.py). Splits are
product-disjoint (70 / 10 / 20 %, seeded, the same for every model); each model is
trained with symmetric InfoNCE, keeps its best epoch by validation R-sum, and is
tested once. Metrics: R@1/5/10 and MRR for image -> text and text -> image over the
test products; training seconds per epoch; inference seconds for the whole test set
(both encoders + the similarity matrix). Mean ± std over --seeds.

    python benchmarks/crossmodal_temde.py                 # -> docs/benchmarks/crossmodal_temde.md
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _fashion import DEFAULT_CACHE, image_features, title_tokens  # noqa: E402

from sketchrec.models.crossmodal import POOLINGS, CrossModalTrainer, retrieval_scores  # noqa: E402

OUT = ROOT / "docs" / "benchmarks"
log = logging.getLogger("crossmodal_temde")


def split(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    perm = np.random.default_rng(seed).permutation(n)
    a, b = int(0.7 * n), int(0.8 * n)
    return np.sort(perm[:a]), np.sort(perm[a:b]), np.sort(perm[b:])


def project_regions(regions, train: np.ndarray, dim: int, sample: int = 100_000) -> np.ndarray:
    """PCA of the region features to `dim` (fitted on regions of training products only): a fixed
    linear map before every model's own trainable layer, which makes training ~5x cheaper."""
    from sklearn.decomposition import PCA
    rng = np.random.default_rng(0)
    rows = np.sort(rng.choice(train, min(len(train), sample // regions.shape[1] + 1), replace=False))
    pca = PCA(dim, random_state=0).fit(np.asarray(regions[rows], dtype=np.float32).reshape(-1, regions.shape[2]))
    log.info("region PCA to %d dims keeps %.1f%% of the variance", dim, 100 * pca.explained_variance_ratio_.sum())
    out = np.empty((len(regions), regions.shape[1], dim), dtype=np.float32)
    for start in range(0, len(regions), 1000):
        block = np.asarray(regions[start:start + 1000], dtype=np.float32)
        out[start:start + 1000] = pca.transform(block.reshape(-1, block.shape[2])).reshape(len(block), -1, dim)
    return out


def run(pooling: str, seed: int, data, parts, args) -> dict:
    regions, tokens, mask = data
    train, valid, test = parts
    trainer = CrossModalTrainer(pooling, dim=args.dim, n=args.n, k=args.k, d=args.d, temperature=args.temperature,
                                epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=seed,
                                threads=args.threads, progress=True)
    trainer.fit(regions[train], tokens[train], mask[train], validation=(regions[valid], tokens[valid], mask[valid]))
    test_regions = np.asarray(regions[test], dtype=np.float32)
    t0 = time.perf_counter()
    img, txt = trainer.embed(test_regions, tokens[test], mask[test])
    scores = retrieval_scores(img, txt)
    infer_s = time.perf_counter() - t0
    params = sum(p.numel() for p in trainer.model_.parameters())
    return {"pooling": pooling, "seed": seed, "test": scores, "best_epoch": trainer.best_epoch_,
            "epochs_run": len(trainer.history_), "epoch_s": float(np.mean([h["seconds"] for h in trainer.history_])),
            "inference_s": infer_s, "parameters": int(params), "history": trainer.history_}


def report(rows: list[dict], args, sizes) -> str:
    label = {"mean": "mean pooling", "attention": "self-attention pooling (SGRAF-style)", "temde": "T-EMDE"}
    lines = ["# Cross-modal retrieval on fashion products: mean vs self-attention vs T-EMDE", "",
             f"{time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; {platform.machine()}, {os.cpu_count()} cores, "
             f"{args.threads} threads; torch {torch.__version__}. Command: `python benchmarks/crossmodal_temde.py "
             f"--seeds {' '.join(map(str, args.seeds))} --epochs {args.epochs} --region-pca {args.region_pca}`.", "",
             f"Products: {sizes[0]:,} train / {sizes[1]:,} validation / {sizes[2]:,} test (disjoint). Image regions: "
             f"EfficientNet-Lite0 7 × 7 × 1280{f' (PCA to {args.region_pca}, fitted on training products)' if args.region_pca else ''}; text: MiniLM token embeddings of the title. Mean / attention: a "
             f"per-token Linear to {args.dim}-d + LayerNorm, pooling, a Linear; T-EMDE: LayerNorm, its own per-token "
             f"projection to N × D, sketch N = {args.n} × K = {args.k} (D = {args.d}, "
             f"τ = {args.temperature}). InfoNCE, batch {args.batch_size}, AdamW lr {args.lr}, best epoch by "
             "validation R-sum. Percentages, mean ± std over seeds.", "",
             "| pooling | seeds | i2t R@1 | i2t R@5 | i2t R@10 | i2t MRR | t2i R@1 | t2i R@5 | t2i R@10 | t2i MRR | "
             "R-sum | s / epoch | test inference s | parameters | best epochs |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for pooling in POOLINGS:
        rs = [r for r in rows if r["pooling"] == pooling]
        if not rs:
            continue

        def cell(values, scale=100.0, digits=1):
            v = np.array(values) * scale
            return f"{v.mean():.{digits}f} ± {v.std(ddof=1):.{digits}f}" if len(v) > 1 else f"{v.mean():.{digits}f}"
        metrics = [cell([r["test"][f"{d}_{m}"] for r in rs]) for d in ("i2t", "t2i")
                   for m in ("R@1", "R@5", "R@10", "MRR")]
        lines.append(f"| {label[pooling]} | {len(rs)} | " + " | ".join(metrics) + " | "
                     f"{cell([r['test']['rsum'] for r in rs])} | {cell([r['epoch_s'] for r in rs], 1, 2)} | "
                     f"{cell([r['inference_s'] for r in rs], 1, 3)} | {rs[0]['parameters']:,} | "
                     f"{', '.join(str(r['best_epoch']) for r in rs)} |")
    lines += ["", f"Peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:,.0f} MiB."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--poolings", nargs="+", default=list(POOLINGS), choices=POOLINGS)
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=5e-4)
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--n", type=int, default=16)
    parser.add_argument("--k", type=int, default=32)
    parser.add_argument("--d", type=int, default=32)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--region-pca", type=int, default=256, help="0: the full 1280-d regions")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cache-dir", default=str(DEFAULT_CACHE))
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(args.threads)
    cache = Path(args.cache_dir)
    _, _, regions = image_features(cache, args.threads)
    tokens, mask = title_tokens(cache, args.threads)
    parts = split(len(regions))
    if args.region_pca:
        regions = project_regions(regions, parts[0], args.region_pca)
    else:
        log.info("loading regions into memory (%.1f GiB float16)", regions.nbytes / 2**30)
        regions = np.asarray(regions)
    results_file = OUT / "crossmodal_temde.json"
    rows = json.loads(results_file.read_text()) if results_file.exists() else []
    done = {(r["pooling"], r["seed"]) for r in rows}
    for seed in args.seeds:
        for pooling in args.poolings:
            if (pooling, seed) in done:
                continue
            rows.append(run(pooling, seed, (regions, tokens, mask), parts, args))
            log.info("%s seed %d: %s", pooling, seed, rows[-1]["test"])
            results_file.write_text(json.dumps(rows, indent=1, default=float))
    text = report(rows, args, [len(p) for p in parts])
    (OUT / "crossmodal_temde.md").write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
