"""SR-GNN training speed (and, with --epochs, accuracy): sketchrec vs RecBole 1.2.1, same data and threads.

RecBole runs in its own virtualenv (never a product dependency). The install that worked
(Python 3.11; torch first and pinned, the local CPU wheel: an unpinned torch pulls a CUDA build):
    python3 -m venv /work/peers/recbole
    /work/peers/recbole/bin/pip install torch==2.13.0
    /work/peers/recbole/bin/pip install --no-deps recbole==1.2.1
    /work/peers/recbole/bin/pip install "numpy<2" "pandas<3" scipy scikit-learn tqdm colorlog==4.7.2 \
        colorama==0.4.4 pyyaml thop tabulate texttable psutil tensorboard
ray, plotly and hyperopt (RecBole's declared deps) are not needed to build a dataset, train and
evaluate: only `recbole.quick_start` imports ray, and it is not used here. tensorboard is needed:
`recbole.utils` imports torch.utils.tensorboard.

Data: our Diginetica `SessionBenchmark`, written once as RecBole benchmark atomic files
(`sketchrec.data.benchmark.write_recbole_files`: `diginetica.{train,valid,test}.inter`: session_id:token, item_id_list:token_seq, item_id:token;
token = our internal id + 1, the last 50 clicks of each prefix, oldest first). train = the 719,470
`expand_prefixes(b.train)` pairs, test = the 60,858 test pairs, valid = the test pairs of
`b.validation(0.1)` (required by the file layout; not used). The RecBole process checks, after its
own remapping, that it holds exactly our 43,097 items and exactly our train / test pairs.

Both models: hidden 100, step 1, batch 100, Adam lr 1e-3, weight decay 1e-5, CE over all items,
at most 50 clicks per prefix, the same number of torch threads. Each runs in a fresh subprocess of
its own venv (benchmarks/peers/srgnn_ours.py, benchmarks/peers/srgnn_recbole.py) (peak RSS = ru_maxrss of that process), back to back. RecBole is timed twice: as
shipped (importing its sequential models turns on torch's autograd anomaly detection, see sine.py)
and with anomaly detection turned off again after import.

    python -m benchmarks.srgnn_vs_recbole --batches 500            # speed: s / batch -> s / epoch
    python -m benchmarks.srgnn_vs_recbole --epochs 3               # + HR@20 / MRR@20 after 3 epochs (hours)
    python -m benchmarks.srgnn_vs_recbole --epochs 3 --bf16        # + ours with bf16 autocast, both modes
writes docs/benchmarks/srgnn_vs_recbole.md and .json. Speed is always measured afresh, all rows in one
run; a quality run whose arguments (and, for ours, model code: MODEL_CODE's hash) match one in the
existing .json is reused from there (it takes hours and does not depend on what else the machine
runs), and the table says so.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import sys
from pathlib import Path

import numpy as np

from sketchrec.data import registry
from sketchrec.data.benchmark import write_recbole_files
from sketchrec.data.sessions import expand_prefixes
from sketchrec.eval.report import benchmark_parser, machine_line, markdown_table, run_python, utc_now, write_page

ROOT = Path(__file__).resolve().parents[1]
PEERS = ROOT / "benchmarks" / "peers"
SPEED_TEMPLATE = ROOT / "benchmarks" / "templates" / "srgnn_vs_recbole_speed.md"   # the speed protocol's prose
PEER_PYTHON = Path(os.environ.get("RECBOLE_PYTHON", "/work/peers/recbole/bin/python"))
NAME = "diginetica"
MAX_LEN = 50
HP = dict(hidden=100, step=1, batch_size=100, lr=1e-3, l2=1e-5)
# our quality runs are reused only while the code they trained with is unchanged
MODEL_CODE = ("sketchrec/models/srgnn/*.py", "sketchrec/models/_loss_kernels.py",
              "sketchrec/models/_attention_kernels.py", "sketchrec/training/*.py")


def model_code_version() -> str:
    digest = hashlib.sha256()
    for pattern in MODEL_CODE:
        for path in sorted(ROOT.glob(pattern)):
            digest.update(path.read_bytes())
    return digest.hexdigest()[:12]


def run(python: Path, script: str, args: dict, threads: int, cwd: Path) -> dict:
    return run_python(python, [PEERS / script, json.dumps(args)], threads=threads, cwd=cwd)


def main() -> None:
    parser = benchmark_parser(__doc__, threads=2, output=ROOT / "docs/benchmarks/srgnn_vs_recbole.md")
    parser.add_argument("--batches", type=int, default=500, help="timed training batches (speed mode)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed batches before them")
    parser.add_argument("--epochs", type=int, default=0,
                        help="0 = speed only; N = also train N epochs and evaluate HR@20 / MRR@20")
    parser.add_argument("--max-train-sessions", type=int, default=0,
                        help="--epochs mode on the first N training sessions only (smoke test)")
    parser.add_argument("--lr-decay", type=float, default=1.0,
                        help="ours: lr factor every lr_decay_every epochs (1.0 = constant, as RecBole)")
    parser.add_argument("--recbole-anomaly-detection", action="store_true",
                        help="--epochs mode: keep RecBole's autograd anomaly detection on, as shipped "
                             "(the speed mode times RecBole both ways)")
    parser.add_argument("--bf16", action="store_true",
                        help="also run ours with bf16 autocast in training (scoring stays float32)")
    parser.add_argument("--workdir", type=Path, default=Path("/work/peers/data"))
    args = parser.parse_args()
    bench = registry.load(NAME)
    data_dir = args.workdir / NAME
    meta = write_recbole_files(bench, data_dir, NAME, MAX_LEN)
    max_pairs = 0
    if args.max_train_sessions:
        max_pairs = len(expand_prefixes(bench.train.take(np.arange(args.max_train_sessions)))[1])
    common = dict(**HP, max_len=MAX_LEN, threads=args.threads, batches=args.batches, warmup=args.warmup,
                  epochs=args.epochs, lr_decay=args.lr_decay)
    ours_args = dict(common, dataset=NAME, max_train_sessions=args.max_train_sessions)
    peer_args = dict(common, name=NAME, data_path=str(args.workdir), run_dir=str(args.workdir / "run"),
                     expected=str(data_dir / "expected.npz"), max_train_pairs=max_pairs, anomaly_off=False)
    run_dir = args.workdir / "run"
    results = {"meta": meta, "args": {k: str(v) for k, v in vars(args).items()}}
    json_path = args.output.with_suffix(".json")
    before = json.loads(json_path.read_text()) if json_path.exists() else {}
    earlier = before.get("quality", {})
    # files written before quality runs recorded their own arguments: compare the command lines
    same_command = before.get("meta") == meta and all(
        before.get("args", {}).get(k) == str(getattr(args, k))
        for k in ("epochs", "threads", "lr_decay", "max_train_sessions", "recbole_anomaly_detection"))

    def quality(key: str, python: Path, script: str, run_args: dict, version: str | None = None) -> dict:
        # hours of training: reuse an earlier run of exactly these arguments (and, for ours, code)
        old = earlier.get(key)
        speed_only = ("batches", "warmup")          # arguments the quality run does not read
        same_args = old is not None and {k: v for k, v in old.get("args", {}).items() if k not in speed_only} == {
            k: v for k, v in run_args.items() if k not in speed_only}
        if old is not None and old.get("code") == version and (
                (same_args and old.get("meta") == meta) or ("args" not in old and same_command)):
            old = {"when": "an earlier run", **old, "args": run_args, "meta": meta, "reused": True}
            print(f"{key}: reusing the quality run of {old['when']}", flush=True)
            return old
        r = run(python, script, run_args, args.threads, run_dir)
        return dict(r, args=run_args, meta=meta, when=utc_now(), reused=False, code=version)

    results["speed"] = {}
    results["speed"]["ours"] = o = run(Path(sys.executable), "srgnn_ours.py", dict(ours_args, mode="speed"),
                                       args.threads, run_dir)
    print("ours    ", o, flush=True)
    if args.bf16:
        results["speed"]["ours_bf16"] = ob = run(Path(sys.executable), "srgnn_ours.py",
                                                 dict(ours_args, mode="speed", bf16=True), args.threads, run_dir)
        print("ours bf16", ob, flush=True)
    results["speed"]["recbole"] = p = run(PEER_PYTHON, "srgnn_recbole.py", dict(peer_args, mode="speed"),
                                          args.threads, run_dir)
    print("recbole ", p, flush=True)
    results["speed"]["recbole_anomaly_off"] = pf = run(PEER_PYTHON, "srgnn_recbole.py", dict(peer_args, mode="speed",
                                                                            anomaly_off=True),
                                                       args.threads, run_dir)
    print("recbole (anomaly detection off)", pf, flush=True)
    check = p["check"]
    if not (check["same_universe"] and check["same_train"] and check["same_test"]
            and check["n_items"] == bench.n_items and check["n_test"] == len(bench.test_targets)):
        raise RuntimeError(f"RecBole does not hold our data: {check}")
    if args.epochs:
        results["quality"] = {}
        version = model_code_version()
        results["quality"]["ours"] = qo = quality("ours", Path(sys.executable), "srgnn_ours.py",
                                                  dict(ours_args, mode="quality"), version)
        print("ours    ", qo, flush=True)
        if args.bf16:
            results["quality"]["ours_bf16"] = quality("ours_bf16", Path(sys.executable), "srgnn_ours.py",
                                                      dict(ours_args, mode="quality", bf16=True), version)
            print("ours bf16", results["quality"]["ours_bf16"], flush=True)
        results["quality"]["recbole"] = qp = quality(
            "recbole", PEER_PYTHON, "srgnn_recbole.py",
            dict(peer_args, mode="quality", anomaly_off=not args.recbole_anomaly_detection))
        print("recbole ", qp, flush=True)

    n_pairs, bs = meta["n_train"], HP["batch_size"]
    per_epoch = math.ceil(n_pairs / bs)
    rows = []
    for who, r, graph_key in (("sketchrec", o, "graphs_s"),
                              *((("sketchrec, bf16 autocast", ob, "graphs_s"),) if args.bf16 else ()),
                              (f"RecBole {p['recbole']} as shipped (autograd anomaly detection on)", p, "get_slice_s"),
                              (f"RecBole {p['recbole']}, anomaly detection turned off", pf, "get_slice_s")):
        graphs = r.get("breakdown", {}).get(graph_key)
        rows.append([who, f"{r['s_per_batch'] * 1e3:.1f} ms", "?" if graphs is None else
                     f"{graphs / r['batches'] * 1e3:.1f} ms", f"{r['s_per_batch'] * per_epoch:,.0f}", r["batches"],
                     f"{r['peak_rss_mb']:,.0f}"])
    lines = markdown_table(["", "time / batch", "of which session graphs",
                            f"s / epoch (extrapolated, {per_epoch:,} batches)", "timed batches", "peak RSS MiB"], rows)
    ratio, ratio_off = p["s_per_batch"] / o["s_per_batch"], pf["s_per_batch"] / o["s_per_batch"]
    results["speed_ratio_recbole_over_ours"] = ratio
    results["speed_ratio_recbole_anomaly_off_over_ours"] = ratio_off
    bf16_line = []
    if args.bf16:
        rb, rb_off = p["s_per_batch"] / ob["s_per_batch"], pf["s_per_batch"] / ob["s_per_batch"]
        results["speed_ratio_recbole_over_ours_bf16"] = rb
        results["speed_ratio_recbole_anomaly_off_over_ours_bf16"] = rb_off
        bf16_line = [f"RecBole / ours with bf16 autocast: **{rb:.2f}x** as shipped, **{rb_off:.2f}x** with "
                     "anomaly detection off.", ""]
    text = ["# SR-GNN training: sketchrec vs RecBole 1.2.1", "",
            f"{machine_line()}; torch {p['torch']}; {args.threads} threads for both "
            "(torch.set_num_threads, OMP/MKL_NUM_THREADS)", "",
            f"Command: `python benchmarks/srgnn_vs_recbole.py --batches {args.batches}"
            + (f" --epochs {args.epochs}" if args.epochs else "") + (" --bf16" if args.bf16 else "")
            + (f" --max-train-sessions {args.max_train_sessions}" if args.max_train_sessions else "") + "`", "",
            f"Data: Diginetica, {n_pairs:,} training pairs (`expand_prefixes(b.train)`), "
            f"{meta['n_test']:,} test prefixes, {meta['n_items']:,} items; RecBole reads the same pairs "
            "from its benchmark atomic files and was checked to hold exactly our items "
            f"(n_items {check['n_items']:,}) and our train / test pairs (n {check['n_train']:,} / "
            f"{check['n_test']:,}). Hidden 100, step 1, batch 100, Adam lr 1e-3, weight decay 1e-5, CE over "
            "all items, the last 50 clicks of each prefix.", "",
            SPEED_TEMPLATE.read_text().strip().format(warmup=args.warmup, batches=args.batches), "",
            *lines, "",
            f"RecBole / ours time per batch: **{ratio:.2f}x** as shipped, **{ratio_off:.2f}x** with "
            "anomaly detection off.", "", *bf16_line]
    if args.epochs:
        qrows = [("sketchrec", qo)] + ([("sketchrec, bf16 autocast", results["quality"]["ours_bf16"])]
                                       if args.bf16 else []) + [(f"RecBole {qp['recbole']}", qp)]
        qlines = markdown_table(["", "epochs", "training pairs", "fit s", "HR@20", "MRR@20", "peak RSS MiB", "run"], [
            [who, r["epochs"], f"{r['pairs']:,}", f"{r['fit_seconds']:,.0f}", f"{r['HR@20']:.4f}", f"{r['MRR@20']:.4f}",
             f"{r['peak_rss_mb']:,.0f}", f"{r['when']}" + (" (reused)" if r["reused"] else "")
             + (f", model code {r['code']}" if r.get("code") else "")] for who, r in qrows])
        text += [f"Accuracy after {args.epochs} epoch(s), full ranking of all items on the same test "
                 "prefixes (ours: `evaluate_session_benchmark(fit=False)`, pessimistic ties; RecBole: "
                 f"`Trainer.evaluate`, torch.topk). Ours with lr decay {args.lr_decay} "
                 "(1.0 = constant lr, as RecBole); RecBole with autograd anomaly detection "
                 f"{'on' if qp['anomaly_detection'] else 'off'} (it does not change the results).", "",
                 *qlines, ""]
    write_page(args.output, "\n".join(text), quiet=True)
    json_path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"written {args.output}")


if __name__ == "__main__":
    main()
