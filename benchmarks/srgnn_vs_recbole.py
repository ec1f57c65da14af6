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
(`diginetica.{train,valid,test}.inter`: session_id:token, item_id_list:token_seq, item_id:token;
token = our internal id + 1, the last 50 clicks of each prefix, oldest first). train = the 719,470
`expand_prefixes(b.train)` pairs, test = the 60,858 test pairs, valid = the test pairs of
`b.validation(0.1)` (required by the file layout; not used). The RecBole process checks, after its
own remapping, that it holds exactly our 43,097 items and exactly our train / test pairs.

Both models: hidden 100, step 1, batch 100, Adam lr 1e-3, weight decay 1e-5, CE over all items,
at most 50 clicks per prefix, the same number of torch threads. Each runs in a fresh subprocess of
its own venv (peak RSS = ru_maxrss of that process), back to back. RecBole is timed twice: as
shipped (importing its sequential models turns on torch's autograd anomaly detection, see sine.py)
and with anomaly detection turned off again after import.

    python benchmarks/srgnn_vs_recbole.py --batches 500            # speed: s / batch -> s / epoch
    python benchmarks/srgnn_vs_recbole.py --epochs 3               # + HR@20 / MRR@20 after 3 epochs (hours)
    python benchmarks/srgnn_vs_recbole.py --epochs 3 --bf16        # + ours with bf16 autocast, both modes
writes docs/benchmarks/srgnn_vs_recbole.md and .json. Speed is always measured afresh, all rows in one
run; a quality run whose arguments (and, for ours, model code: MODEL_CODE's hash) match one in the
existing .json is reused from there (it takes hours and does not depend on what else the machine
runs), and the table says so.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PEER_PYTHON = Path(os.environ.get("RECBOLE_PYTHON", "/work/peers/recbole/bin/python"))
NAME = "diginetica"
MAX_LEN = 50
HP = dict(hidden=100, step=1, batch_size=100, lr=1e-3, l2=1e-5)
# our quality runs are reused only while the code they trained with is unchanged
MODEL_CODE = ("sketchrec/models/srgnn.py", "sketchrec/models/_loss_kernels.py",
              "sketchrec/models/_attention_kernels.py")


def model_code_version() -> str:
    digest = hashlib.sha256()
    for name in MODEL_CODE:
        digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()[:12]

# ---------------------------------------------------------------------------------------------
# ours: kept small so it is easy to adapt when SRGNN's API changes
OURS = r"""
import json, math, resource, sys, time
import numpy as np
a = json.loads(sys.argv[1])
from sketchrec.data import registry
from sketchrec.data.sessions import expand_prefixes
from sketchrec.models.srgnn import SRGNN
from _sessions import whole_sessions

bench = registry.load(a["dataset"])
train = bench.train
if a["max_train_sessions"]:
    train = train.take(np.arange(min(a["max_train_sessions"], len(train))))

def make(epochs):
    want = dict(hidden=a["hidden"], step=a["step"], epochs=epochs, batch_size=a["batch_size"], lr=a["lr"],
                l2=a["l2"], lr_decay=a["lr_decay"], max_len=a["max_len"], seed=0, threads=a["threads"],
                bf16=a.get("bf16", False), progress=False)
    names = SRGNN._param_names()
    return SRGNN(**{k: v for k, v in want.items() if k in names}), [k for k in want if k not in names]

def subset(n_batches, seed):
    return whole_sessions(train, n_batches * a["batch_size"], seed)

out = {"n_items": int(bench.n_items), "n_test": int(len(bench.test_targets))}
if a["mode"] == "speed":
    make(1)[0].fit(subset(a["warmup"], 1))                       # warm-up: thread pools, allocator
    part = subset(a["batches"], 0)
    n_pairs = len(expand_prefixes(part)[1])
    model, missing = make(1)
    model.fit(part)
    seconds = model.history_[-1]["seconds"]
    n_batches = math.ceil(n_pairs / a["batch_size"])
    out.update(batches=n_batches, pairs=n_pairs, seconds=seconds, s_per_batch=seconds / n_batches,
               missing_params=missing,
               breakdown={k: v for k, v in model.history_[-1].items() if k.endswith("_s")})
else:
    from sketchrec.eval.protocols import evaluate_session_benchmark
    model, missing = make(a["epochs"])
    t0 = time.perf_counter()
    model.fit(train)
    fit_s = time.perf_counter() - t0
    res = evaluate_session_benchmark(model, bench, fit=False, ks=(20,), progress=False)
    n_pairs = len(expand_prefixes(train)[1])
    out.update(pairs=n_pairs, epochs=a["epochs"], fit_seconds=fit_s,
               epoch_seconds=[h["seconds"] for h in model.history_],
               loss=[h["loss"] for h in model.history_], missing_params=missing,
               **{"HR@20": res.metrics["HR@20"], "MRR@20": res.metrics["MRR@20"]})
out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""

# ---------------------------------------------------------------------------------------------
# RecBole 1.2.1, in its own venv
PEER = r"""
import itertools, json, logging, resource, sys, time, warnings
warnings.filterwarnings("ignore")
import numpy as np
a = json.loads(sys.argv[1])
import torch
torch.set_num_threads(a["threads"])
from recbole.config import Config
from recbole.data import create_dataset, data_preparation
from recbole.data.utils import get_dataloader
from recbole.model.sequential_recommender import SRGNN
from recbole.trainer import Trainer
from recbole.utils import init_seed

# recbole/model/sequential_recommender/sine.py calls torch.autograd.set_detect_anomaly(True) at import,
# so importing any RecBole sequential model turns anomaly detection on for the whole process
anomaly_as_shipped = torch.is_anomaly_enabled()
if a["anomaly_off"]:
    torch.autograd.set_detect_anomaly(False)

logging.getLogger().setLevel(logging.ERROR)
config = Config(model="SRGNN", dataset=a["name"], config_dict={
    "data_path": a["data_path"], "checkpoint_dir": a["run_dir"] + "/saved",
    "benchmark_filename": ["train", "valid", "test"],
    "USER_ID_FIELD": "session_id", "ITEM_ID_FIELD": "item_id",
    "load_col": {"inter": ["session_id", "item_id_list", "item_id"]},
    "alias_of_item_id": ["item_id_list"], "MAX_ITEM_LIST_LENGTH": a["max_len"],
    "embedding_size": a["hidden"], "step": a["step"], "loss_type": "CE", "train_neg_sample_args": None,
    "train_batch_size": a["batch_size"], "learner": "adam", "learning_rate": a["lr"],
    "weight_decay": a["l2"], "epochs": max(a["epochs"], 1), "eval_step": 0,
    "eval_args": {"split": {"RS": [0.8, 0.1, 0.1]}, "order": "TO", "mode": "full", "group_by": "user"},
    "metrics": ["Hit", "MRR"], "topk": [20], "valid_metric": "MRR@20", "eval_batch_size": 1000,
    "metric_decimal_place": 6,
    "gpu_id": "", "use_gpu": False, "worker": 0, "show_progress": False, "state": "ERROR",
    "seed": 2020, "reproducibility": True})
init_seed(config["seed"], config["reproducibility"])
t0 = time.perf_counter()
dataset = create_dataset(config)
train_data, valid_data, test_data = data_preparation(config, dataset)
load_s = time.perf_counter() - t0

# same item universe, same pairs: map RecBole's ids back to ours (token = our id + 1)
id2tok = dataset.field2id_token["item_id"]
assert id2tok[0] == "[PAD]"
ours_of = np.full(len(id2tok), -1, dtype=np.int64)
ours_of[1:] = id2tok[1:].astype(np.int64) - 1
exp = np.load(a["expected"])
check = {"n_items": int(dataset.item_num - 1),
         "same_universe": bool(np.array_equal(np.sort(ours_of[1:]), np.arange(int(exp["n_items"]))))}
for split, dl in (("train", train_data), ("test", test_data)):
    f = dl._dataset.inter_feat
    seq, length, tgt = f["item_id_list"].numpy(), f["item_length"].numpy(), f["item_id"].numpy()
    mask = np.arange(seq.shape[1])[None, :] < length[:, None]
    check[f"n_{split}"] = int(len(tgt))
    check[f"same_{split}"] = bool(
        np.array_equal(length, np.diff(exp[f"{split}_indptr"]))
        and np.array_equal(ours_of[seq[mask]], exp[f"{split}_items"])
        and np.array_equal(ours_of[tgt], exp[f"{split}_targets"])
        and not (seq[~mask] != 0).any())
    check[f"{split}_width"] = int(seq.shape[1])

if a["max_train_pairs"]:     # first pairs of the train file = whole first sessions; universe kept
    ds = train_data._dataset
    train_data = get_dataloader(config, "train")(config, ds.copy(ds.inter_feat[:a["max_train_pairs"]]),
                                                 None, shuffle=True)
model = SRGNN(config, train_data._dataset).to(config["device"])
trainer = Trainer(config, model)

class Batches:               # RecBole's own train loader, cut after n batches
    def __init__(self, dl, n):
        self.dl, self.n, self.seen = dl, min(n, len(dl)), 0
    def __iter__(self):
        for batch in itertools.islice(iter(self.dl), self.n):
            self.seen += 1
            yield batch
    def __len__(self):
        return self.n

out = {"load_seconds": load_s, "check": check, "threads": torch.get_num_threads(),
       "anomaly_detection": torch.is_anomaly_enabled(), "anomaly_detection_as_shipped": anomaly_as_shipped,
       "torch": torch.__version__, "n_items_model": int(model.n_items)}
if a["mode"] == "speed":
    trainer._train_epoch(Batches(train_data, a["warmup"]), 0)
    slice_s = [0.0]           # time in SRGNN._get_slice: its per-session Python graph building
    get_slice = model._get_slice
    def timed_slice(item_seq):
        t = time.perf_counter()
        try:
            return get_slice(item_seq)
        finally:
            slice_s[0] += time.perf_counter() - t
    model._get_slice = timed_slice
    timed = Batches(train_data, a["batches"])
    t0 = time.perf_counter()
    trainer._train_epoch(timed, 1)
    seconds = time.perf_counter() - t0
    out.update(batches=timed.seen, seconds=seconds, s_per_batch=seconds / timed.seen,
               breakdown={"get_slice_s": slice_s[0]})
else:
    t0 = time.perf_counter()
    trainer.fit(train_data, valid_data=None, saved=False, show_progress=False)
    fit_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    res = trainer.evaluate(test_data, load_best_model=False, show_progress=False)
    out.update(pairs=len(train_data._dataset), epochs=a["epochs"], fit_seconds=fit_s,
               eval_seconds=time.perf_counter() - t1, loss=trainer.train_loss_dict,
               **{"HR@20": float(res["hit@20"]), "MRR@20": float(res["mrr@20"])})
import recbole
out["recbole"] = recbole.__version__
out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out, default=float))
"""


# ---------------------------------------------------------------------------------------------
def _inter_text(prefixes, targets, sessions_of_pair: np.ndarray, tag: str) -> str:
    """RecBole atomic-file rows `<tag><session>\\t<i1 i2 ... ik>\\t<target>\\n`, token = id + 1.
    Vectorised: per-id strings are built once, then gathered for every click."""
    n_items, n = prefixes.n_items, len(prefixes)
    ids = np.arange(1, n_items + 1).astype(str).astype(object)
    with_space, with_tab, with_nl = ids + " ", ids + "\t", ids + "\n"
    last = np.zeros(prefixes.nnz, dtype=bool)
    last[prefixes.indptr[1:] - 1] = True
    tokens = np.where(last, with_tab[prefixes.items], with_space[prefixes.items])
    pieces = np.empty(prefixes.nnz + 2 * n, dtype=object)
    head = prefixes.indptr[:-1] + 2 * np.arange(n)              # row r: head, its clicks, tail
    click_pos = np.arange(prefixes.nnz) + 2 * prefixes.row_of_click() + 1
    pieces[head] = np.char.add(tag, sessions_of_pair.astype(str)).astype(object) + "\t"
    pieces[click_pos] = tokens
    pieces[prefixes.indptr[1:] + 2 * np.arange(n) + 1] = with_nl[targets]
    return "".join(pieces.tolist())


def write_recbole_benchmark(bench, out_dir: Path, name: str = NAME, max_len: int = MAX_LEN) -> dict:
    """Write `name.{train,valid,test}.inter` + expected.npz (our ids) to out_dir; skip if up to date."""
    from sketchrec.data.sessions import expand_prefixes

    valid = bench.validation(0.1)
    parts = {}
    for split, sessions in (("train", bench.train), ("valid", valid.test_sessions), ("test", bench.test_sessions)):
        prefixes, targets = expand_prefixes(sessions)
        sess = np.repeat(np.arange(len(sessions)), np.maximum(sessions.lengths - 1, 0))
        parts[split] = (prefixes.tail(max_len), targets, sess)
    p, t = bench.test_prefixes.tail(max_len), bench.test_targets
    if not (np.array_equal(parts["test"][0].items, p.items) and np.array_equal(parts["test"][1], t)):
        raise RuntimeError("expand_prefixes(test_sessions) differs from bench.test_prefixes")
    digest = hashlib.blake2b(digest_size=16)
    for pre, tgt, _ in parts.values():
        for arr in (pre.indptr, pre.items, tgt):
            digest.update(np.ascontiguousarray(arr).tobytes())
    meta = {"format": 1, "name": name, "max_len": max_len, "n_items": int(bench.n_items),
            "digest": digest.hexdigest(), **{f"n_{s}": int(len(v[1])) for s, v in parts.items()}}
    meta_path = out_dir / "meta.json"
    if meta_path.exists() and json.loads(meta_path.read_text()) == meta:
        return meta
    out_dir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    header = "session_id:token\titem_id_list:token_seq\titem_id:token\n"
    for split, (pre, tgt, sess) in parts.items():
        (out_dir / f"{name}.{split}.inter").write_text(header + _inter_text(pre, tgt, sess, split[:2]))
    np.savez(out_dir / "expected.npz", n_items=bench.n_items,
             **{f"{s}_{k}": v for s in ("train", "test")
                for k, v in (("indptr", parts[s][0].indptr), ("items", parts[s][0].items),
                             ("targets", parts[s][1]))})
    meta_path.write_text(json.dumps(meta))
    print(f"wrote RecBole benchmark files to {out_dir} in {time.perf_counter() - t0:.1f} s", flush=True)
    return meta


def run(python: Path, code: str, args: dict, threads: int, cwd: Path) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "benchmarks")]),
           "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
           "NUMBA_NUM_THREADS": str(threads)}
    cwd.mkdir(parents=True, exist_ok=True)
    out = subprocess.run([str(python), "-c", code, json.dumps(args)], capture_output=True, text=True,
                         env=env, cwd=cwd)
    if out.returncode != 0:
        raise RuntimeError(f"{python} failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, default=500, help="timed training batches (speed mode)")
    parser.add_argument("--warmup", type=int, default=20, help="untimed batches before them")
    parser.add_argument("--threads", type=int, default=2)
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
    parser.add_argument("--output", type=Path, default=ROOT / "docs/benchmarks/srgnn_vs_recbole.md")
    args = parser.parse_args()

    os.environ.setdefault("SKETCHREC_DATA", str(ROOT.parent / "shared/datasets"))
    sys.path.insert(0, str(ROOT))
    from sketchrec.data import registry
    from sketchrec.data.sessions import expand_prefixes
    from sketchrec.eval.report import machine_line

    bench = registry.load(NAME)
    data_dir = args.workdir / NAME
    meta = write_recbole_benchmark(bench, data_dir)
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

    def quality(key: str, python: Path, code: str, run_args: dict, version: str | None = None) -> dict:
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
        r = run(python, code, run_args, args.threads, run_dir)
        return dict(r, args=run_args, meta=meta, when=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                    reused=False, code=version)

    results["speed"] = {}
    results["speed"]["ours"] = o = run(Path(sys.executable), OURS, dict(ours_args, mode="speed"),
                                       args.threads, run_dir)
    print("ours    ", o, flush=True)
    if args.bf16:
        results["speed"]["ours_bf16"] = ob = run(Path(sys.executable), OURS,
                                                 dict(ours_args, mode="speed", bf16=True), args.threads, run_dir)
        print("ours bf16", ob, flush=True)
    results["speed"]["recbole"] = p = run(PEER_PYTHON, PEER, dict(peer_args, mode="speed"),
                                          args.threads, run_dir)
    print("recbole ", p, flush=True)
    results["speed"]["recbole_anomaly_off"] = pf = run(PEER_PYTHON, PEER, dict(peer_args, mode="speed",
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
        results["quality"]["ours"] = qo = quality("ours", Path(sys.executable), OURS,
                                                  dict(ours_args, mode="quality"), version)
        print("ours    ", qo, flush=True)
        if args.bf16:
            results["quality"]["ours_bf16"] = quality("ours_bf16", Path(sys.executable), OURS,
                                                      dict(ours_args, mode="quality", bf16=True), version)
            print("ours bf16", results["quality"]["ours_bf16"], flush=True)
        results["quality"]["recbole"] = qp = quality(
            "recbole", PEER_PYTHON, PEER,
            dict(peer_args, mode="quality", anomaly_off=not args.recbole_anomaly_detection))
        print("recbole ", qp, flush=True)

    n_pairs, bs = meta["n_train"], HP["batch_size"]
    per_epoch = math.ceil(n_pairs / bs)
    lines = ["| | time / batch | of which session graphs | s / epoch (extrapolated, "
             f"{per_epoch:,} batches) | timed batches | peak RSS MiB |", "|---|---|---|---|---|---|"]
    rows = (("sketchrec", o, "graphs_s"),
            *((("sketchrec, bf16 autocast", ob, "graphs_s"),) if args.bf16 else ()),
            (f"RecBole {p['recbole']} as shipped (autograd anomaly detection on)", p, "get_slice_s"),
            (f"RecBole {p['recbole']}, anomaly detection turned off", pf, "get_slice_s"))
    for who, r, graph_key in rows:
        graphs = r.get("breakdown", {}).get(graph_key)
        graphs = "?" if graphs is None else f"{graphs / r['batches'] * 1e3:.1f} ms"
        lines.append(f"| {who} | {r['s_per_batch'] * 1e3:.1f} ms | {graphs} | "
                     f"{r['s_per_batch'] * per_epoch:,.0f} | {r['batches']} | {r['peak_rss_mb']:,.0f} |")
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
            f"Speed: {args.warmup} warm-up batches, then {args.batches} timed batches (RecBole: its dataloader "
            "+ `Trainer._train_epoch`; ours: `SRGNN.fit` with epochs=1 on a seeded random set of whole "
            "training sessions giving that many batches, its `history_[-1]['seconds']`), extrapolated to "
            "an epoch. Session graphs: ours `session_graphs` (vectorised over the batch, padded to the "
            "batch's longest prefix rounded up to a multiple of 8); RecBole `SRGNN._get_slice` (a Python loop over the batch's "
            "sessions and their clicks, padded to the dataset's longest prefix, 50, on every batch). "
            "RecBole 1.2.1's `sequential_recommender/sine.py` calls `torch.autograd.set_detect_anomaly(True)` "
            "when imported, i.e. whenever any of its sequential models is imported, which checks every "
            "backward result for NaN; RecBole is timed as shipped and with it turned off after import. "
            "Optimiser: ours whatever `SRGNN.fit` builds (when this was written `TableAdam`: torch's fused "
            "Adam, and for the item table under bf16 one numba pass that steps it and writes its bf16 "
            "copy); RecBole's trainer torch's default (per-tensor) Adam. "
            "Peak RSS: ru_maxrss of each fresh process (RecBole holds its whole dataset; ours "
            "loads the benchmark and trains on the subset). The machine may be running other jobs: "
            "timings are noisy.", "",
            *lines, "",
            f"RecBole / ours time per batch: **{ratio:.2f}x** as shipped, **{ratio_off:.2f}x** with "
            "anomaly detection off.", "", *bf16_line]
    if args.epochs:
        qlines = ["| | epochs | training pairs | fit s | HR@20 | MRR@20 | peak RSS MiB | run |",
                  "|---|---|---|---|---|---|---|---|"]
        qrows = [("sketchrec", qo)]
        if args.bf16:
            qrows.append(("sketchrec, bf16 autocast", results["quality"]["ours_bf16"]))
        for who, r in (*qrows, (f"RecBole {qp['recbole']}", qp)):
            when = f"{r['when']}" + (" (reused)" if r["reused"] else "") + (
                f", model code {r['code']}" if r.get("code") else "")
            qlines.append(f"| {who} | {r['epochs']} | {r['pairs']:,} | {r['fit_seconds']:,.0f} | "
                          f"{r['HR@20']:.4f} | {r['MRR@20']:.4f} | {r['peak_rss_mb']:,.0f} | {when} |")
        text += [f"Accuracy after {args.epochs} epoch(s), full ranking of all items on the same test "
                 "prefixes (ours: `evaluate_session_benchmark(fit=False)`, pessimistic ties; RecBole: "
                 f"`Trainer.evaluate`, torch.topk). Ours with lr decay {args.lr_decay} "
                 "(1.0 = constant lr, as RecBole); RecBole with autograd anomaly detection "
                 f"{'on' if qp['anomaly_detection'] else 'off'} (it does not change the results).", "",
                 *qlines, ""]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text("\n".join(text))
    json_path.write_text(json.dumps(results, indent=2, default=str) + "\n")
    print(f"written {args.output}")


if __name__ == "__main__":
    main()
