"""RecBole 1.2.1's SR-GNN side of benchmarks/srgnn_vs_recbole.py, run with RecBole's own virtualenv:
    /work/peers/recbole/bin/python benchmarks/peers/srgnn_recbole.py '<json arguments>'
Reads the atomic files `sketchrec.data.benchmark.write_recbole_files` wrote, checks it holds
exactly our items and pairs, then times training batches (speed) or trains and tests (quality).
Prints one JSON line."""

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
