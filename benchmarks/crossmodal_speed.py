"""Cost of the pooling alone: one training step and test-set inference per pooling (issue 7).

The s / epoch column of crossmodal_temde.md comes from runs that shared the 2 cores with other
jobs; this script times the same models on an otherwise idle machine: forward + backward + AdamW
for one batch of 128 real fashion products (PCA-256 regions, MiniLM title tokens), median of 20
after 3 warm-ups, and encoding the 1,917 test products on both sides. Settings as in
crossmodal_temde.py (mean / attention: dim 512, and 1024 as chosen on validation; T-EMDE a priori: N 16 × K 32, D 32; tuned: the
same plus the sketch head).

    python -m benchmarks.crossmodal_speed          # -> docs/benchmarks/crossmodal_speed.md
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from sketchrec.embedders.features import image_features, text_tokens
from sketchrec.eval.report import benchmark_parser, machine_line, markdown_table, median_seconds, write_page
from sketchrec.retrieval.catalogue import RegionPCA, product_split
from sketchrec.retrieval.crossmodal import CrossModalModel, info_nce

MODELS = {
    "mean pooling": dict(pooling="mean", dim=512),
    "self-attention pooling": dict(pooling="attention", dim=512),
    "mean pooling (tuned: dim 1024)": dict(pooling="mean", dim=1024),
    "self-attention pooling (tuned: dim 1024)": dict(pooling="attention", dim=1024),
    "T-EMDE (a priori)": dict(pooling="temde", dim=512, n=16, k=32, d=32),
    "T-EMDE (tuned: + sketch head)": dict(pooling="temde", dim=512, n=16, k=32, d=32, sketch_head=True),
}


def main() -> None:
    parser = benchmark_parser(__doc__, threads=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    _, _, regions = image_features(threads=args.threads)
    tokens, mask = text_tokens(threads=args.threads)
    train, _, test = product_split(len(regions))
    regions = RegionPCA(256).fit(regions, train).transform(regions)
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
        step_ms = 1000 * median_seconds(step, args.repeats, 3)
        model.eval()
        infer_ms = 1000 * median_seconds(infer, max(5, args.repeats // 2), 2)
        rows.append((name, step_ms, infer_ms, sum(p.numel() for p in model.parameters())))
        print(name, f"{step_ms:.1f} ms / step, {infer_ms:.0f} ms test inference")
    base = rows[1][1]
    write_page(Path(__file__).resolve().parents[1] / "docs/benchmarks/crossmodal_speed.md", "\n".join([
        "# Cross-modal pooling cost: one training step and test inference", "",
        machine_line() + f"; torch {torch.__version__}, {args.threads} threads", "",
        f"Command: `python benchmarks/crossmodal_speed.py --threads {args.threads}`. One training step = forward "
        f"+ backward + AdamW on {args.batch_size} fashion products (49 PCA-256 regions, title tokens); median of "
        f"{args.repeats} after 3 warm-ups. Test inference = both encoders over the {len(test):,} test products "
        "and the similarity matrix. Nothing else ran on the machine.", "",
        *markdown_table(["pooling", "ms / training step", "vs attention", "test inference ms", "parameters"],
                        [[n, f"{s:.1f}", f"{s / base:.2f}×", f"{i:.0f}", f"{p:,}"] for n, s, i, p in rows])]))


if __name__ == "__main__":
    main()
