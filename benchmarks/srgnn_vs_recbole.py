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

import json
import os
import sys
from pathlib import Path

import numpy as np

from sketchrec.data import registry
from sketchrec.data.benchmark import write_recbole_files
from sketchrec.data.sessions import expand_prefixes
from sketchrec.eval.report import (benchmark_parser, code_version, command, earlier_run, read_json, run_python, utc_now,
                                   write_page)
from sketchrec.eval.runs import recbole_page

ROOT = Path(__file__).resolve().parents[1]
PEERS = ROOT / "benchmarks" / "peers"
SPEED_TEMPLATE = ROOT / "benchmarks" / "templates" / "srgnn_vs_recbole_speed.md"   # the data and speed protocol's prose
QUALITY_TEMPLATE = SPEED_TEMPLATE.with_name("srgnn_vs_recbole_quality.md")          # the --epochs protocol's prose
PEER_PYTHON = Path(os.environ.get("RECBOLE_PYTHON", "/work/peers/recbole/bin/python"))
NAME = "diginetica"
MAX_LEN = 50
HP = dict(hidden=100, step=1, batch_size=100, lr=1e-3, l2=1e-5)
# our quality runs are reused only while the code they trained with is unchanged
MODEL_CODE = ("sketchrec/models/srgnn/*.py", "sketchrec/models/_loss_kernels.py",
              "sketchrec/models/_attention_kernels.py", "sketchrec/training/*.py")


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
    results = {"meta": meta, "args": {k: str(v) for k, v in vars(args).items()}}
    json_path = args.output.with_suffix(".json")
    before = read_json(json_path, {})
    ours, peer = (Path(sys.executable), "srgnn_ours.py"), (PEER_PYTHON, "srgnn_recbole.py")

    def run(key: str, peer_and_script, run_args: dict, version: str | None = None, part: str = "speed") -> dict:
        # a quality run is hours of training: reuse an earlier run of exactly these arguments (and, for ours, code)
        r = None if part == "speed" else earlier_run(before.get("quality", {}).get(key), run_args, meta, version,
                                                     ignore=("batches", "warmup"))
        if r is not None:
            print(f"{key}: reusing the quality run of {r['when']}", flush=True)
        else:
            python, script = peer_and_script
            r = run_python(python, [PEERS / script, json.dumps(run_args)], threads=args.threads, cwd=args.workdir / "run")
            print(part, key, r, flush=True)
            r = r if part == "speed" else dict(r, args=run_args, meta=meta, when=utc_now(), reused=False, code=version)
        results.setdefault(part, {})[key] = r
        return r

    run("ours", ours, dict(ours_args, mode="speed"))
    if args.bf16:
        run("ours_bf16", ours, dict(ours_args, mode="speed", bf16=True))
    p = run("recbole", peer, dict(peer_args, mode="speed"))
    run("recbole_anomaly_off", peer, dict(peer_args, mode="speed", anomaly_off=True))
    check = p["check"]
    if not (check["same_universe"] and check["same_train"] and check["same_test"]
            and check["n_items"] == bench.n_items and check["n_test"] == len(bench.test_targets)):
        raise RuntimeError(f"RecBole does not hold our data: {check}")
    if args.epochs:
        version = code_version(ROOT, MODEL_CODE)
        run("ours", ours, dict(ours_args, mode="quality"), version, part="quality")
        if args.bf16:
            run("ours_bf16", ours, dict(ours_args, mode="quality", bf16=True), version, part="quality")
        run("recbole", peer, dict(peer_args, mode="quality", anomaly_off=not args.recbole_anomaly_detection),
                 part="quality")

    text = recbole_page(results, args, HP["batch_size"], SPEED_TEMPLATE.read_text(), QUALITY_TEMPLATE.read_text(),
                        command("srgnn_vs_recbole", batches=args.batches, epochs=args.epochs or None, bf16=args.bf16,
                                max_train_sessions=args.max_train_sessions or None))
    write_page(args.output, "\n".join(text), quiet=True)
    json_path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"written {args.output}")


if __name__ == "__main__":
    main()
