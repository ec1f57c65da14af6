"""EMDE modality ablation on a session benchmark's validation split.

Every variant is trained on the validation split's training part (the first
90% of training sessions) and scored on 10,000 sampled validation pairs after
every epoch; the table shows each variant's best epoch. The test set is not
touched, so this is the model-selection view of what each modality adds.

    python benchmarks/emde_ablation.py --dataset yoochoose1-64 --epochs 3
writes docs/benchmarks/emde_ablation_<dataset>.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
if (ROOT.parent / "shared/datasets").exists():  # the staged copies beside the repository
    os.environ.setdefault("SKETCHREC_DATA", str(ROOT.parent / "shared/datasets"))

from emde_sessions import EMDE_PARAMS  # noqa: E402

from sketchrec.eval.report import machine_line  # noqa: E402
from sketchrec.models import EMDE  # noqa: E402
from sketchrec.pipeline import load_session_benchmark  # noqa: E402

VARIANTS = {
    "cleora:1 (unimodal)": dict(inputs=("all:cleora:1",), outputs=("cleora:1",)),
    "cleora:1 + last item": dict(inputs=("all:cleora:1", "last:cleora:1"), outputs=("cleora:1",)),
    "cleora:1 + cleora:3 + last item (default)": dict(inputs=("all:cleora:1", "all:cleora:3", "last:cleora:1"),
                                                      outputs=("cleora:1", "cleora:3")),
    "default, geometric readout": dict(readout="geometric"),
    "default, min readout (the papers')": dict(readout="min"),
}
OTHER_READOUTS = {"default, geometric readout": "geometric", "default, min readout (the papers')": "min"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="yoochoose1-64")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS))
    parser.add_argument("--params", type=json.loads, default={}, help="JSON overrides of EMDE settings")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: all cores)")
    args = parser.parse_args()
    bench = load_session_benchmark(args.dataset)
    valid = bench.validation(0.1)
    rows = np.random.default_rng(0).choice(len(valid.test_targets), min(10_000, len(valid.test_targets)),
                                           replace=False)
    pairs = (valid.test_prefixes.take(rows), valid.test_targets[rows])
    t_start, results = time.perf_counter(), {}
    for name in args.variants:
        params = {**EMDE_PARAMS, "progress": False, **VARIANTS[name], "epochs": args.epochs, "threads": args.threads,
                  **args.params}
        if name in OTHER_READOUTS:
            # same network as the default: only the readout differs, so score the default model each way
            continue
        model = EMDE(**params).fit(valid.train, validation=pairs)
        best = max(model.history_, key=lambda r: r["MRR@20"])
        results[name] = {"best": best, "epoch_s": float(np.mean([r["seconds"] for r in model.history_]))}
        print(name, {k: round(100 * best[k], 2) for k in ("HR@20", "MRR@20")}, f"epoch {best['epoch']}", flush=True)
        for other, readout in OTHER_READOUTS.items():
            if not name.endswith("(default)") or other not in args.variants:
                continue
            from sketchrec.eval.protocols import evaluate_next_item
            model.readout, model._readout = readout, None
            metrics, _ = evaluate_next_item(model, *pairs, progress=False)
            results[other] = {"best": {**metrics, "epoch": best["epoch"]}, "epoch_s": results[name]["epoch_s"]}
            print(other, {k: round(100 * metrics[k], 2) for k in ("HR@20", "MRR@20")}, flush=True)
    lines = ["| variant | inputs | outputs | HR@10 | MRR@10 | HR@20 | MRR@20 | best epoch | s/epoch |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, r in results.items():
        p = {**EMDE_PARAMS, **VARIANTS[name]}
        b = r["best"]
        lines.append(f"| {name} | {', '.join(p['inputs'])} | {', '.join(p['outputs'])} | "
                     + " | ".join(f"{100 * b[k]:.2f}" for k in ("HR@10", "MRR@10", "HR@20", "MRR@20"))
                     + f" | {b['epoch']} | {r['epoch_s']:.0f} |")
    out = ROOT / f"docs/benchmarks/emde_ablation_{args.dataset}.md"
    out.write_text(
        f"# EMDE modality ablation on {args.dataset} (validation split)\n\n"
        f"{machine_line()}; total {time.perf_counter() - t_start:.0f} s\n\n"
        f"Command: `python benchmarks/emde_ablation.py --dataset {args.dataset} --epochs {args.epochs}`\n\n"
        "Trained on the first 90% of training sessions, scored on 10,000 sampled validation pairs "
        "(full ranking, pessimistic ties) after every epoch; best epoch shown; metrics in %. Other "
        f"settings as `benchmarks/emde_sessions.py`: `{json.dumps({k: v for k, v in EMDE_PARAMS.items() if k not in ('inputs', 'outputs')})}`\n\n"
        + "\n".join(lines) + "\n")
    print(f"written {out}")


if __name__ == "__main__":
    main()
