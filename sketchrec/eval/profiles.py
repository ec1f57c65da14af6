"""Probing user profiles for item genres (benchmarks/profile_features.py, emde_explain.py): a ratings
set's genre matrix, per-user genre labels and shares, and a one-vs-rest logistic regression with C
chosen on validation, scored by macro average precision and micro ROC AUC; and `write_profiles`, the
profiles of every row of a log larger than memory written to Parquet a buffer at a time.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from sketchrec.data import registry
from sketchrec.data.sessions import Sessions


def load(name: str):
    """A ratings data set with item genres: (one row per user in time order, item x genre multi-hot
    float32 matrix, the genre names)."""
    inter = registry.load(name)
    rows = inter.to_sessions()                                  # one row per user, time order
    names = inter.items.column("genres").to_pylist()
    vocab = sorted({g for gs in names for g in (gs or [])})
    index = {g: i for i, g in enumerate(vocab)}
    genres = np.zeros((inter.n_items, len(vocab)), np.float32)
    r = np.repeat(np.arange(len(names)), [len(g or []) for g in names])
    genres[r, [index[g] for gs in names for g in (gs or [])]] = 1.0
    return rows, genres, vocab


def labels_of(future: Sessions, genres: np.ndarray) -> np.ndarray:
    """Per row, 1 for every genre of any of its items (multi-label targets)."""
    y = np.zeros((len(future), genres.shape[1]), dtype=np.int64)
    rows = future.row_of_click()
    np.maximum.at(y, rows, genres[future.items].astype(np.int64))
    return y


def genre_shares(history: Sessions, genres: np.ndarray) -> np.ndarray:
    """Per row, the share of its items in each genre."""
    g = np.zeros((len(history), genres.shape[1]), np.float32)
    np.add.at(g, history.row_of_click(), genres[history.items])
    return g / np.maximum(history.lengths[:, None], 1)


def fit_predict(x_train, y_train, x_test, seed):
    """One-vs-rest logistic regression; C from {0.1, 1, 10} by macro AP on a 25% validation split
    of the training users, then refitted on all of them."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.multiclass import OneVsRestClassifier
    active = y_train.std(0) > 0
    y_train = y_train[:, active]
    valid = np.random.default_rng(seed).random(x_train.shape[0]) < 0.25

    def model(c):
        return OneVsRestClassifier(LogisticRegression(C=c, max_iter=1000, solver="liblinear"))
    best = max((scores(y_train[valid], model(c).fit(x_train[~valid], y_train[~valid]).predict_proba(x_train[valid]))
                ["mAP"], c) for c in (0.1, 1.0, 10.0))
    est = model(best[1]).fit(x_train, y_train)
    proba = np.zeros((x_test.shape[0], len(active)))
    proba[:, active] = est.predict_proba(x_test)
    return proba, best[1], est, active


def scores(y, proba):
    """Macro average precision and micro ROC AUC over the labels that are neither absent nor universal."""
    from sklearn.metrics import average_precision_score, roc_auc_score
    cols = (y.sum(0) > 0) & (y.sum(0) < len(y))
    return {"mAP": float(average_precision_score(y[:, cols], proba[:, cols], average="macro")),
            "micro_AUC": float(roc_auc_score(y[:, cols], proba[:, cols], average="micro"))}


def write_profiles(model, source, path: str | Path, batch_rows: int = 100_000) -> dict:
    """Behavioural profiles (`model.profile`: EMDE's input sketches) of every row of `source` — a
    `SessionStream` (a log larger than memory, read a buffer at a time, in file order) or
    in-memory `Sessions` — written to one Parquet file, a row group per batch of `batch_rows` rows.

    Columns: row_id (the session / user id; the row index for `Sessions` without ids), indices
    list<int32> and values list<float32>: the row's sparse profile (column ids as
    `model.feature_names()`). Memory: one buffer's rows and the sparse profiles of `batch_rows`
    of them (a row group each). Returns {"rows", "nonzeros", "bytes"}.
    """
    buffers = source.buffers() if hasattr(source, "buffers") else [source]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    schema = pa.schema([("row_id", pa.int64()), ("indices", pa.list_(pa.int32())), ("values", pa.list_(pa.float32()))])
    rows = nonzeros = 0
    with pq.ParquetWriter(path, schema) as writer:
        batches = (buf.take(np.arange(lo, min(lo + batch_rows, len(buf))))
                   for buf in buffers for lo in range(0, len(buf), batch_rows))
        for buf in batches:
            x = model.profile(buf)                              # (rows, features) CSR
            ids = buf.row_ids if buf.row_ids is not None else np.arange(rows, rows + len(buf))
            offsets = pa.array(x.indptr.astype(np.int32))
            writer.write_table(pa.table({
                "row_id": pa.array(np.asarray(ids, np.int64)),
                "indices": pa.ListArray.from_arrays(offsets, pa.array(x.indices.astype(np.int32))),
                "values": pa.ListArray.from_arrays(offsets, pa.array(x.data.astype(np.float32)))}, schema=schema))
            rows, nonzeros = rows + len(buf), nonzeros + x.nnz
    return {"rows": rows, "nonzeros": nonzeros, "bytes": path.stat().st_size}
