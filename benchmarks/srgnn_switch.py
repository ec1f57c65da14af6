"""GMM session clustering ("switch case", thesis Algorithms 1-2, Table 5.2) on full Diginetica.

The refit Base SR-GNN of a seed (benchmarks/srgnn_augmentation.py --protocol refit) embeds the
last 10% of the training sessions (by time); a GMM (--clusters, full covariance, KMeans init)
clusters those session vectors; one copy of the model is fine-tuned per cluster on the training
prefixes routed there (--epochs at lr --lr, early-stopped on the cluster's share of those 10%,
which the Base model has also trained on — the test set is never used); test prefixes are routed
by the GMM. Reported: overall and per-cluster HR@20 / MRR@20 of the shared model and the routed
one, the deltas, and a per-prefix Wilcoxon test.

    python -m benchmarks.srgnn_switch --seed 0 [--lr 1e-5]   # -> docs/benchmarks/srgnn_switch_runs/, srgnn_switch.md
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from sketchrec.data import registry
from sketchrec.eval.metrics import session_metrics
from sketchrec.eval.protocols import next_item_ranks
from sketchrec.eval.report import benchmark_parser, host_line, markdown_table, timed, utc_now
from sketchrec.eval.significance import reciprocal_ranks, wilcoxon_signed_rank
from sketchrec.eval.validation import NextItemValidation
from sketchrec.models.base import Recommender
from sketchrec.models.session_clusters import ClusteredSessions

OUT = Path(__file__).resolve().parents[1] / "docs" / "benchmarks"


def main() -> None:
    parser = benchmark_parser(__doc__, seed=0, epochs=1)
    parser.add_argument("--model", default="srgnn")
    parser.add_argument("--clusters", type=int, default=4)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--runs-dir", default=os.environ.get("SKETCHREC_RUNS",
                                                             str(Path.home() / ".cache" / "sketchrec" / "runs")))
    args = parser.parse_args()
    bench = registry.load("diginetica")
    valid = bench.validation(0.1)
    base_file = Path(args.runs_dir) / f"diginetica-{args.model}-base-s{args.seed}-refit.model.npz"
    if not base_file.exists():
        raise SystemExit(f"needs the refit Base model {base_file}: run benchmarks/srgnn_augmentation.py "
                         f"--variants base --seeds {args.seed} --protocol refit first")
    base = Recommender.load(base_file)
    switch, fit_s = timed(ClusteredSessions(n_clusters=args.clusters, fine_tune_epochs=args.epochs, fine_tune_lr=args.lr,
                                            seed=args.seed).fit, bench.train, base=base,
                          validation=NextItemValidation(valid.test_prefixes, valid.test_targets))
    route = switch.route(bench.test_prefixes)
    r_base, r_switch = (next_item_ranks(m, bench.test_prefixes, bench.test_targets)[0] for m in (base, switch))
    rows = []
    for c in [None, *range(args.clusters)]:
        sel = np.ones(len(route), bool) if c is None else route == c
        mb, ms = session_metrics(r_base[sel], ks=(20,)), session_metrics(r_switch[sel], ks=(20,))
        p = wilcoxon_signed_rank(reciprocal_ranks(r_switch[sel]), reciprocal_ranks(r_base[sel])) \
            if sel.sum() > 10 else float("nan")
        rows.append({"cluster": "all" if c is None else int(c), "test_prefixes": int(sel.sum()),
                     "train_prefixes": None if c is None else int(switch.cluster_sizes_[c]),
                     "base": {k: float(v) for k, v in mb.items() if "@" in k},
                     "switch": {k: float(v) for k, v in ms.items() if "@" in k}, "wilcoxon_p": float(p)})
    runs = OUT / "srgnn_switch_runs"
    runs.mkdir(exist_ok=True)
    stem = f"{args.model}-s{args.seed}-c{args.clusters}-e{args.epochs}-lr{args.lr:g}"
    (runs / f"{stem}.json").write_text(json.dumps(
        {"args": vars(args), "fit_s": fit_s, "rows": rows, "machine": host_line().split("; ", 1)[1],
         "when": utc_now()}, indent=1))
    print(report())


def report() -> str:
    """docs/benchmarks/srgnn_switch.md from every run in docs/benchmarks/srgnn_switch_runs/."""
    lines = ["# SR-GNN with GMM session clustering (switch case)", "",
             "Base = the refit SR-GNN (all training sessions). Clusters: a GMM over its session vectors of the last "
             "10% of training sessions; per cluster a copy of Base fine-tuned on the training prefixes routed there "
             "(fresh Adam at the given lr); test prefixes routed by the GMM. Δ = switch − Base on the same prefixes; "
             "Wilcoxon on per-prefix RR@20.", ""]
    for path in sorted((OUT / "srgnn_switch_runs").glob("*.json")):
        run = json.loads(path.read_text())
        a = run["args"]
        lines += [f"## {a['model']}, seed {a['seed']}, {a['clusters']} clusters, {a['epochs']} epoch(s) at lr {a['lr']:g}",
                  "", f"{run.get('when', '')}; {run.get('machine', '')}. Command: `python benchmarks/srgnn_switch.py "
                  f"--seed {a['seed']} --clusters {a['clusters']} --epochs {a['epochs']} --lr {a['lr']:g}`. "
                  f"Fine-tuning took {run['fit_s']:.0f} s.", "",
                  *markdown_table(["cluster", "test prefixes", "training prefixes", "Base HR@20", "switch HR@20", "Δ",
                                   "Base MRR@20", "switch MRR@20", "Δ", "Wilcoxon p (RR@20)"],
                                  [[r["cluster"], f"{r['test_prefixes']:,}", r["train_prefixes"] or "—",
                                    *[f"{100 * v:{f}}" for m in ("HR@20", "MRR@20") for v, f in (
                                        (r["base"][m], ".2f"), (r["switch"][m], ".2f"),
                                        (r["switch"][m] - r["base"][m], "+.2f"))],
                                    f"{r['wilcoxon_p']:.2g}"] for r in run["rows"]])]
        lines.append("")
    text = "\n".join(lines)
    (OUT / "srgnn_switch.md").write_text(text)
    return text


if __name__ == "__main__":
    main()
