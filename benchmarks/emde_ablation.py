"""EMDE modality ablation on a session benchmark's validation split.

Every variant is trained on the validation split's training part (the first
90% of training sessions) and scored on 10,000 sampled validation pairs after
every epoch; the table shows each variant's best epoch. The test set is not
touched, so this is the model-selection view of what each modality adds.

    python -m benchmarks.emde_ablation --dataset yoochoose1-64 --epochs 3
writes docs/benchmarks/emde_ablation_<dataset>.md.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from sketchrec import presets
from sketchrec.eval.protocols import evaluate_next_item, next_item_validation
from sketchrec.eval.report import benchmark_parser, command, markdown_table, page_head, write_page
from sketchrec.models import EMDE
from sketchrec.pipeline import load_session_benchmark
from sketchrec.training import valid_metric

OUT = Path(__file__).resolve().parents[1] / "docs" / "benchmarks"
VARIANTS = {
    "cleora:1 (unimodal)": dict(inputs=("all:cleora:1",), outputs=("cleora:1",)),
    "cleora:1 + last item": dict(inputs=("all:cleora:1", "last:cleora:1"), outputs=("cleora:1",)),
    "cleora:1 + cleora:3 + last item (default)": dict(inputs=("all:cleora:1", "all:cleora:3", "last:cleora:1"),
                                                      outputs=("cleora:1", "cleora:3")),
    "default, geometric readout": dict(readout="geometric"),
    "default, min readout (the papers')": dict(readout="min"),
}
OTHER_READOUTS = {"default, geometric readout": "geometric", "default, min readout (the papers')": "min"}
METRICS = ("HR@10", "MRR@10", "HR@20", "MRR@20")


def main() -> None:
    parser = benchmark_parser(__doc__, dataset="yoochoose1-64", epochs=3, threads=None)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS))
    parser.add_argument("--params", type=json.loads, default={}, help="JSON overrides of EMDE settings")
    args = parser.parse_args()
    session_params = {**presets.get("emde-session"), "progress": True}
    valid = load_session_benchmark(args.dataset).validation(0.1)
    validation = next_item_validation(valid)
    t_start, results = time.perf_counter(), {}
    for name in args.variants:
        if name in OTHER_READOUTS:
            # same network as the default: only the readout differs, so score the default model each way
            continue
        params = {**session_params, "progress": False, **VARIANTS[name], "epochs": args.epochs,
                  "threads": args.threads, **args.params}
        model = EMDE(**params).fit(valid.train, validation=validation)
        best = max(model.history_, key=lambda r: valid_metric(r, "MRR@20"))
        results[name] = {"best": best, "epoch_s": float(np.mean([r["seconds"] for r in model.history_]))}
        print(name, {k: round(100 * valid_metric(best, k), 2) for k in ("HR@20", "MRR@20")}, f"epoch {best['epoch']}",
              flush=True)
        for other, readout in OTHER_READOUTS.items():
            if not name.endswith("(default)") or other not in args.variants:
                continue
            model.readout, model._readout = readout, None
            metrics, _ = evaluate_next_item(model, validation.prefixes, validation.targets, progress=False)
            results[other] = {"best": {**metrics, "epoch": best["epoch"]}, "epoch_s": results[name]["epoch_s"]}
            print(other, {k: round(100 * metrics[k], 2) for k in ("HR@20", "MRR@20")}, flush=True)
    rows = []
    for name, r in results.items():
        p, b = {**session_params, **VARIANTS[name]}, r["best"]
        rows.append([name, ", ".join(p["inputs"]), ", ".join(p["outputs"]),
                     *[f"{100 * valid_metric(b, k):.2f}" for k in METRICS], b["epoch"], f"{r['epoch_s']:.0f}"])
    shown = json.dumps({k: v for k, v in session_params.items() if k not in ("inputs", "outputs")})
    write_page(OUT / f"emde_ablation_{args.dataset}.md",
               page_head(f"EMDE modality ablation on {args.dataset} (validation split)", command(
                   "emde_ablation", dataset=args.dataset, epochs=args.epochs), f"; total {time.perf_counter() - t_start:.0f} s")
               +                "Trained on the first 90% of training sessions, scored on 10,000 sampled validation pairs "
               "(full ranking, pessimistic ties) after every epoch; best epoch shown; metrics in %. Other "
               f"settings as `benchmarks/emde_sessions.py`: `{shown}`\n\n"
               + "\n".join(markdown_table(["variant", "inputs", "outputs", *METRICS, "best epoch", "s/epoch"], rows)))


if __name__ == "__main__":
    main()
