"""Cost of the pooling alone: one training step and test-set inference per pooling (issue 7).

The s / epoch column of crossmodal_temde.md comes from runs that shared the 2 cores with other
jobs; this script times the same models on an otherwise idle machine: forward + backward + AdamW
for one batch of 128 real fashion products (PCA-256 regions, MiniLM title tokens), median of 20
after 3 warm-ups, and encoding the 1,917 test products on both sides. Settings as in
crossmodal_temde.py (mean / attention: dim 512, and 1024 as chosen on validation; T-EMDE a priori: N 16 × K 32, D 32; tuned: the
same plus the sketch head).

    python benchmarks/crossmodal_speed.py          # -> docs/benchmarks/crossmodal_speed.md
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from _fashion import DEFAULT_CACHE, image_features, title_tokens  # noqa: E402

from sketchrec.eval.report import machine_line, median_seconds  # noqa: E402
from sketchrec.models.crossmodal import CrossModalModel, info_nce  # noqa: E402
from sketchrec.retrieval.catalogue import RegionPCA, product_split  # noqa: E402

OUT = ROOT / "docs" / "benchmarks"
MODELS = {
    "mean pooling": dict(pooling="mean", dim=512),
    "self-attention pooling": dict(pooling="attention", dim=512),
    "mean pooling (tuned: dim 1024)": dict(pooling="mean", dim=1024),
    "self-attention pooling (tuned: dim 1024)": dict(pooling="attention", dim=1024),
    "T-EMDE (a priori)": dict(pooling="temde", dim=512, n=16, k=32, d=32),
    "T-EMDE (tuned: + sketch head)": dict(pooling="temde", dim=512, n=16, k=32, d=32, sketch_head=True),
}


def median_ms(fn, repeats: int, warmup: int = 3) -> float:
    return 1000 * median_seconds(fn, repeats, warmup)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    _, _, regions = image_features(DEFAULT_CACHE, args.threads)
    tokens, mask = title_tokens(DEFAULT_CACHE, args.threads)
    train, _, test = product_split(len(regions))
    regions = RegionPCA.fit(regions, train, 256).transform(regions)
    batch = np.random.default_rng(0).choice(train, args.batch_size, replace=False)
    r = torch.from_numpy(np.asarray(regions[batch], np.float32))
    t, m = torch.from_numpy(np.asarray(tokens[batch], np.float32)), torch.from_numpy(np.asarray(mask[batch]))
    rt = torch.from_numpy(np.asarray(regions[test], np.float32))
    tt, mt = torch.from_numpy(np.asarray(tokens[test], np.float32)), torch.from_numpy(np.asarray(mask[test]))
    rows = []
    for name, params in MODELS.items():
        model = CrossModalModel(r.shape[2], t.shape[2], **params)
        opt = torch.optim.AdamW(model.parameters(), lr=5e-4)

        def step():
            opt.zero_grad()
            loss = info_nce(model.encode_images(r), model.encode_texts(t, m))
            loss.backward()
            opt.step()

        def infer():
            with torch.inference_mode():
                img, txt = model.encode_images(rt), model.encode_texts(tt, mt)
                return img @ txt.T

        model.train()
        step_ms = median_ms(step, args.repeats)
        model.eval()
        infer_ms = median_ms(infer, max(5, args.repeats // 2), warmup=2)
        rows.append((name, step_ms, infer_ms, sum(p.numel() for p in model.parameters())))
        print(name, f"{step_ms:.1f} ms / step, {infer_ms:.0f} ms test inference")
    base = rows[1][1]
    lines = ["# Cross-modal pooling cost: one training step and test inference", "", machine_line()
             + f"; torch {torch.__version__}, {args.threads} threads", "",
             f"Command: `python benchmarks/crossmodal_speed.py --threads {args.threads}`. One training step = forward "
             f"+ backward + AdamW on {args.batch_size} fashion products (49 PCA-256 regions, title tokens); median of "
             f"{args.repeats} after 3 warm-ups. Test inference = both encoders over the {len(test):,} test products "
             "and the similarity matrix. Nothing else ran on the machine.", "",
             "| pooling | ms / training step | vs attention | test inference ms | parameters |", "|---|---|---|---|---|"]
    lines += [f"| {n} | {s:.1f} | {s / base:.2f}× | {i:.0f} | {p:,} |" for n, s, i, p in rows]
    (OUT / "crossmodal_speed.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
