"""sketchrec's SR-GNN side of benchmarks/srgnn_vs_recbole.py, run in a fresh process:
    python benchmarks/peers/srgnn_ours.py '<json arguments>'
speed mode: one timed epoch over a seeded set of whole training sessions; quality mode: train
all epochs and test. Prints one JSON line. Kept small, so it is easy to adapt when SRGNN's API changes."""

import json, math, resource, sys, time
import numpy as np
a = json.loads(sys.argv[1])
from sketchrec.data import registry
from sketchrec.data.sessions import expand_prefixes
from sketchrec.models.srgnn import SRGNN
from sketchrec.data.splits import whole_sessions_sample as whole_sessions

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
