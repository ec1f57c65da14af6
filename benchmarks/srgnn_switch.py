"""GMM session clustering ("switch case", thesis Algorithms 1-2, Table 5.2) on full Diginetica.

The refit Base SR-GNN of a seed (benchmarks/srgnn_augmentation.py --protocol refit) embeds the
last 10% of the training sessions (by time); a GMM (--clusters, full covariance, KMeans init)
clusters those session vectors; one copy of the model is fine-tuned per cluster on the training
prefixes routed there (--epochs at lr --lr, early-stopped on the cluster's share of those 10%,
which the Base model has also trained on — the test set is never used); test prefixes are routed
by the GMM. Reported: overall and per-cluster HR@20 / MRR@20 of the shared model and the routed
one, the deltas, and a per-prefix Wilcoxon test.

    python benchmarks/srgnn_switch.py --seed 0 [--lr 1e-5]   # -> docs/benchmarks/srgnn_switch_runs/, srgnn_switch.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sketchrec.data import registry  # noqa: E402
from sketchrec.eval.metrics import session_metrics, target_ranks  # noqa: E402
from sketchrec.models.base import Recommender  # noqa: E402
from sketchrec.models.session_clusters import ClusteredSessions  # noqa: E402

OUT = ROOT / "docs" / "benchmarks"


def ranks_of(model, bench) -> np.ndarray:
    n = len(bench.test_targets)
    return np.concatenate([target_ranks(model.score(bench.test_prefixes.take(np.arange(s, min(s + 1000, n)))),
                                        bench.test_targets[s:s + 1000]) for s in range(0, n, 1000)])


def main() -> None:
    from scipy import stats
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default="srgnn")
    parser.add_argument("--clusters", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=1)
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
    t0 = time.perf_counter()
    switch = ClusteredSessions(n_clusters=args.clusters, fine_tune_epochs=args.epochs, fine_tune_lr=args.lr,
                               seed=args.seed).fit(bench.train, base=base,
                                                   validation=(valid.test_prefixes, valid.test_targets))
    fit_s = time.perf_counter() - t0
    route = switch.route(bench.test_prefixes)
    r_base, r_switch = ranks_of(base, bench), ranks_of(switch, bench)
    rr = lambda r: np.where(r <= 20, 1.0 / r, 0.0)  # noqa: E731
    rows = []
    for c in [None, *range(args.clusters)]:
        sel = np.ones(len(route), bool) if c is None else route == c
        mb, ms = session_metrics(r_base[sel], ks=(20,)), session_metrics(r_switch[sel], ks=(20,))
        p = stats.wilcoxon(rr(r_switch[sel]), rr(r_base[sel])).pvalue if sel.sum() > 10 and \
            np.any(rr(r_switch[sel]) != rr(r_base[sel])) else float("nan")
        rows.append({"cluster": "all" if c is None else int(c), "test_prefixes": int(sel.sum()),
                     "train_prefixes": None if c is None else int(switch.cluster_sizes_[c]),
                     "base": {k: float(v) for k, v in mb.items() if "@" in k},
                     "switch": {k: float(v) for k, v in ms.items() if "@" in k}, "wilcoxon_p": float(p)})
    runs = OUT / "srgnn_switch_runs"
    runs.mkdir(exist_ok=True)
    stem = f"{args.model}-s{args.seed}-c{args.clusters}-e{args.epochs}-lr{args.lr:g}"
    (runs / f"{stem}.json").write_text(json.dumps(
        {"args": vars(args), "fit_s": fit_s, "rows": rows, "machine": f"{platform.machine()}, {os.cpu_count()} cores",
         "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}, indent=1))
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
                  "| cluster | test prefixes | training prefixes | Base HR@20 | switch HR@20 | Δ | Base MRR@20 | "
                  "switch MRR@20 | Δ | Wilcoxon p (RR@20) |", "|---|---|---|---|---|---|---|---|---|---|"]
        for r in run["rows"]:
            b, sw = r["base"], r["switch"]
            lines.append(f"| {r['cluster']} | {r['test_prefixes']:,} | {r['train_prefixes'] or '—'} | "
                         f"{100 * b['HR@20']:.2f} | {100 * sw['HR@20']:.2f} | {100 * (sw['HR@20'] - b['HR@20']):+.2f} | "
                         f"{100 * b['MRR@20']:.2f} | {100 * sw['MRR@20']:.2f} | "
                         f"{100 * (sw['MRR@20'] - b['MRR@20']):+.2f} | {r['wilcoxon_p']:.2g} |")
        lines.append("")
    text = "\n".join(lines)
    (OUT / "srgnn_switch.md").write_text(text)
    return text


if __name__ == "__main__":
    main()
