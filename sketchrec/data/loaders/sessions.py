"""Session data: the four SR-GNN-protocol benchmarks and raw session-log samples.

Benchmarks (`diginetica`, `yoochoose1-64`, `retailrocket`, `nowplaying`) load
as `SessionBenchmark`; the raw samples (`diginetica-sample`, `otto-sample`,
`trivago-sample`) as `Interactions`, and `yoochoose-100k` as a
`SessionBenchmark` over session-rec's time split.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from functools import partial

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sketchrec._deprecation import renamed_function
from sketchrec.data.benchmark import SessionBenchmark
from sketchrec.data.idmap import IdMap
from sketchrec.data.interactions import Interactions
from sketchrec.data.loaders._parse import read_csv, read_int_lines, read_string_columns, split_int_lists
from sketchrec.data.readers import read_interactions
from sketchrec.data.registry import DatasetSpec, Source, file_table, raw_url, recipe, register
from sketchrec.data.sessions import Sessions

log = logging.getLogger(__name__)

_PICKLE_NOTE = ("rewritten as gzipped text from the source's Python pickles "
                "(all_train_seq.txt / test.txt) by the dataset staging")
_RAW_NOTE = "gzip of the unchanged source file (its original sha256 is in the README)"


# -- loaders ------------------------------------------------------------------------

def load_srgnn_benchmark(paths: dict, *, name: str, folder: str) -> SessionBenchmark:
    """SR-GNN-protocol benchmark files -> `SessionBenchmark` (the registry's loader; by name:
    `sketchrec.data.registry.load` or `sketchrec.pipeline.load_session_benchmark`).

    train : Sessions from `train_sessions.txt.gz` (one session per line).
    test_sessions : from `test_sessions.*`; test prefixes/targets are their
        expansion (longest prefix first), checked pair for pair against
        `test_pairs.tsv.gz`. retailrocket's pairs start at prefix length 2 and
        are read from `test_pairs.tsv.gz` directly (row_ids = source session
        ids; `meta["test_pair_times"]` (n_pairs,) int64 Unix seconds).
    item_ids : the source's integer ids, factorised over train then test, so
        test-only items (369 in yoochoose1-64) are in the universe;
        `meta` counts test items/targets unseen in train.
    """
    file = lambda f: paths[f"session-benchmarks/{folder}/{f}"]  # noqa: E731
    tr_ptr, tr_vals = read_int_lines(file("train_sessions.txt.gz"))
    test_row_ids = None
    if folder == "retailrocket":
        t = read_string_columns(file("test_sessions.tsv.gz"), header=True)
        te_ptr, te_vals = split_int_lists(t.column("items"))
        test_row_ids = pc.cast(t.column("session_id"), pa.int64()).to_numpy()
    else:
        te_ptr, te_vals = read_int_lines(file("test_sessions.txt.gz"))
    item_ids, codes = IdMap.factorize(np.concatenate([tr_vals, te_vals]), name="item")
    n_items = len(item_ids)
    train = Sessions(tr_ptr, codes[:len(tr_vals)], n_items)
    test = Sessions(te_ptr, codes[len(tr_vals):], n_items, row_ids=test_row_ids)

    header = folder == "retailrocket"
    pairs = read_string_columns(file("test_pairs.tsv.gz"), 2, header=header)
    prefix_col, label_col = ("prefix", "label") if header else ("c0", "c1")
    p_ptr, p_vals = split_int_lists(pairs.column(prefix_col))
    labels = pc.cast(pairs.column(label_col), pa.int64()).to_numpy()
    internal = item_ids.lookup(np.concatenate([p_vals, labels])).internal
    if (internal < 0).any():
        raise ValueError(f"{file('test_pairs.tsv.gz')}: {int((internal < 0).sum())} item ids "
                         f"occur in no train or test session")
    file_prefixes = Sessions(p_ptr, internal[:len(p_vals)], n_items)
    file_targets = internal[len(p_vals):].astype(np.int32)

    in_train = train.item_counts() > 0
    meta = {"source_folder": f"session-benchmarks/{folder}",
            "n_train_items": int(in_train.sum()),
            "n_test_items_unseen_in_train": int(np.count_nonzero(~in_train & (test.item_counts() > 0))),
            "n_test_targets_unseen_in_train": int(np.count_nonzero(~in_train[file_targets]))}
    if header:
        file_prefixes.row_ids = pc.cast(pairs.column("session_id"), pa.int64()).to_numpy()
        meta.update(min_prefix=2, test_pairs_from="test_pairs.tsv.gz",
                    test_pair_times=pc.cast(pairs.column("time"), pa.int64()).to_numpy())
        return SessionBenchmark(name, train, file_prefixes, file_targets, item_ids,
                                test_sessions=test, meta=meta)
    bench = SessionBenchmark.from_sessions(name, train, test, item_ids, min_prefix=1, **meta)
    same = (np.array_equal(bench.test_prefixes.indptr, file_prefixes.indptr)
            and np.array_equal(bench.test_prefixes.items, file_prefixes.items)
            and np.array_equal(bench.test_targets, file_targets))
    if same:
        bench.meta["test_pairs_from"] = "expanded test_sessions (equal to test_pairs.tsv.gz)"
    else:  # the source's test.txt is what papers evaluate on: trust it
        log.warning("%s: expanding test_sessions does not reproduce test_pairs.tsv.gz; "
                    "using the pairs file", name)
        bench.test_prefixes, bench.test_targets = file_prefixes, file_targets
        bench.meta["test_pairs_from"] = "test_pairs.tsv.gz"
    return bench


#: the former name (it clashed with `pipeline.load_session_benchmark(name)`); goes in the next release
load_session_benchmark = renamed_function(load_srgnn_benchmark, "load_session_benchmark")


def _sessions_from_events(session: np.ndarray, items: np.ndarray, time: np.ndarray,
                          n_items: int) -> Sessions:
    """Clicks (any order) -> one row per session id (ascending), clicks by time (stable)."""
    order = np.lexsort((time, session))
    s = session[order]
    first = np.flatnonzero(np.r_[True, s[1:] != s[:-1]]) if len(s) else np.zeros(0, np.int64)
    codes = np.cumsum(np.r_[False, s[1:] != s[:-1]]) if len(s) else np.zeros(0, np.int64)
    return Sessions.from_sorted_codes(codes, items[order], n_items,
                                      timestamps=np.floor(time[order]).astype(np.int64),
                                      row_ids=s[first])


def load_yoochoose_100k(paths: dict, *, split: str = "test") -> SessionBenchmark:
    """session-rec's 100k-click YooChoose sample -> `SessionBenchmark`.

    split="test": train = `train_full`, test = `test` (the evaluation split);
    split="valid": train = `train_tr`, test = `train_valid` (for tuning).
    Rows are sessions in ascending SessionId, clicks by time (timestamps =
    floor of Unix seconds); items are factorised over train then test and
    test-only items stay in the universe (`meta` counts them).
    """
    parts = {"test": ("train_full", "test"), "valid": ("train_tr", "train_valid")}
    if split not in parts:
        raise ValueError(f"split must be 'test' or 'valid', got {split!r}")
    types = {"SessionId": pa.int64(), "ItemId": pa.int64(), "Time": pa.float64()}
    tables = [read_csv(paths[f"yoochoose-sample/yoochoose-clicks-100k_{p}.txt"], delimiter="\t",
                       column_types=types) for p in parts[split]]
    item_ids, codes = IdMap.factorize(np.concatenate([t.column("ItemId").to_numpy() for t in tables]),
                                      name="ItemId")
    n_train = tables[0].num_rows
    rows = [_sessions_from_events(t.column("SessionId").to_numpy(), c, t.column("Time").to_numpy(),
                                  len(item_ids))
            for t, c in ((tables[0], codes[:n_train]), (tables[1], codes[n_train:]))]
    in_train = rows[0].item_counts() > 0
    unseen = int(np.count_nonzero(~in_train & (rows[1].item_counts() > 0)))
    return SessionBenchmark.from_sessions(f"yoochoose-100k/{split}", rows[0], rows[1], item_ids,
                                          split=split, files=parts[split],
                                          n_test_items_unseen_in_train=unseen)


def _ts_sql(date_col: str, ms_col: str) -> str:
    # DIGINETICA: eventdate (day) + timeframe (ms since the session's first event)
    return f"epoch(CAST({date_col} AS TIMESTAMP)) + {ms_col} / 1000.0"


def load_diginetica_sample(paths: dict) -> Interactions:
    """SR-GNN's DIGINETICA sample -> `Interactions` of item views.

    user = session_id, item = original item_id, timestamp = eventdate +
    timeframe (floored to seconds; rows ordered by session, date, timeframe so
    `to_sessions()` keeps the true click order inside a second).
    items : table aligned to internal item ids: item_id, category_id (-1 if none).
    meta["purchases"] : `Interactions` of `train-purchases.csv` (own id maps).
    meta["categories"] : the full product-categories table (itemId, categoryId).
    """
    views_path = str(paths["diginetica/sample_train-item-views.csv"]).replace("'", "''")
    views = read_interactions(
        sql=(f"SELECT session_id, item_id, {_ts_sql('eventdate', 'timeframe')} AS ts "
             f"FROM read_csv('{views_path}', delim=';', header=true, columns={{'session_id': 'BIGINT', "
             f"'user_id': 'VARCHAR', 'item_id': 'BIGINT', 'timeframe': 'BIGINT', 'eventdate': 'DATE'}}) "
             f"ORDER BY session_id, eventdate, timeframe"),
        user="session_id", item="item_id", timestamp="ts", timestamp_unit="s")
    buy_path = str(paths["diginetica/train-purchases.csv"]).replace("'", "''")
    purchases = read_interactions(
        sql=(f"SELECT sessionId, itemId, {_ts_sql('eventdate', 'timeframe')} AS ts, ordernumber "
             f"FROM read_csv('{buy_path}', delim=';', header=true, nullstr='NA', columns={{"
             f"'sessionId': 'BIGINT', 'userId': 'BIGINT', 'timeframe': 'BIGINT', 'eventdate': 'DATE', "
             f"'ordernumber': 'BIGINT', 'itemId': 'BIGINT'}}) ORDER BY sessionId, eventdate, timeframe"),
        user="sessionId", item="itemId", timestamp="ts", timestamp_unit="s")
    categories = read_csv(paths["diginetica/product-categories.csv"], delimiter=";",
                          column_types={"itemId": pa.int64(), "categoryId": pa.int64()})
    found = views.item_ids.lookup(categories.column("itemId")).internal
    category = np.full(views.n_items, -1, dtype=np.int64)
    known = found >= 0
    category[found[known]] = categories.column("categoryId").to_numpy()[known]
    views.items = pa.table({"item_id": views.item_ids.keys, "category_id": category})
    views.meta.update(purchases=purchases, categories=categories, dataset="diginetica-sample")
    return views


def load_otto_sample(paths: dict) -> Interactions:
    """OTTO's 20-session test sample -> `Interactions` (user = session, item = aid,
    timestamp = ts floored to seconds, event in {clicks, carts, orders})."""
    path = str(paths["otto-sample/otto_train_first20_sessions.jsonl"]).replace("'", "''")
    sql = (f"SELECT session, e.aid AS aid, e.ts AS ts, e.type AS type FROM ("
           f"SELECT session, unnest(events) AS e FROM read_json('{path}', format='newline_delimited'))")
    return read_interactions(sql=sql, user="session", item="aid", timestamp="ts", event="type",
                             timestamp_unit="ms")


_TRIVAGO_ITEM_ACTIONS = ("clickout item", "interaction item image", "interaction item info",
                         "interaction item rating", "interaction item deals", "search for item")


def load_trivago_sample(paths: dict, *, by: str = "session_id",
                        item_actions_only: bool = False) -> Interactions:
    """trivago RecSys 2019 sample -> `Interactions` (user = `by`: session_id or user_id,
    item = reference, event = action_type, timestamp = Unix seconds).

    `reference` is a hotel id only for item actions; for searches, filters and
    sort changes it is a city, filter or sort name. `item_actions_only=True`
    keeps only the rows whose reference is an item.
    """
    if by not in ("session_id", "user_id"):
        raise ValueError(f"by must be 'session_id' or 'user_id', got {by!r}")
    path = str(paths["trivago-sample/trivago_val_100k.parquet.snappy"]).replace("'", "''")
    where = ""
    if item_actions_only:
        where = " WHERE action_type IN (" + ", ".join(f"'{a}'" for a in _TRIVAGO_ITEM_ACTIONS) + ")"
    return read_interactions(sql=f"SELECT * FROM read_parquet('{path}'){where}", user=by,
                             item="reference", timestamp="timestamp", event="action_type",
                             timestamp_unit="s")


# -- catalogue ---------------------------------------------------------------------

_BENCH = {
    "diginetica": ("diginetica", "CCIIPLab/GCE-GNN@212575302e42d64b8cf0b9ffe1b71b0db398d5be",
                   "CIKM Cup 2016 DIGINETICA", "none stated (GCE-GNN)", """
055a5a9810cf75b3544b5d01e864e1689a11736ff5b511890d57f5a86b982881  688043  session-benchmarks/diginetica/cikm16_test_raw_ids.tsv.gz
310de1367eb1d135359e5a6a0916962fe32464d7d8dc42e41671abbfb4676e09  391059  session-benchmarks/diginetica/test_pairs.tsv.gz
4150b080e45421f023efb9e8354edf6190502cc215f592466b5a864cdfd2f83f  185134  session-benchmarks/diginetica/test_sessions.txt.gz
ccdaaea89bad2bb149c0a01a17793c8811f78382aad2c690818cc45181465afe  2131110  session-benchmarks/diginetica/train_sessions.txt.gz
""", dict(train_sessions=186_670, train_clicks=906_140, train_prefixes=719_470, test_pairs=60_858,
          test_sessions=15_963, test_clicks=76_821, items=43_097)),
    "nowplaying": ("nowplaying", "CCIIPLab/GCE-GNN@212575302e42d64b8cf0b9ffe1b71b0db398d5be",
                   "Nowplaying (Zangerle et al. 2014)", "none stated (GCE-GNN)", """
e25f38bb510c72049b56d628c4bf1687c37816d2a70fedc013efa81bd603af29  615030  session-benchmarks/nowplaying/test_pairs.tsv.gz
98ace093a8604b5aba69d3fa0e4cd31974bbb5ba5d12ed81a70b699826b95b1a  254750  session-benchmarks/nowplaying/test_sessions.txt.gz
a48a824df1ef0675bd82047b9e17d17b71cfe7113a3b2203afd0c4be79344ceb  2264731  session-benchmarks/nowplaying/train_sessions.txt.gz
""", dict(train_sessions=128_077, train_clicks=953_381, train_prefixes=825_304, test_pairs=89_824,
          test_sessions=14_479, test_clicks=104_303, items=60_416)),
    "yoochoose1-64": ("yoochoose1_64",
                      "YuhanZhen/WSDM23-DGNNs--for-Session-based-Recommendation@a1f246cc2e4914582829fdb15b89b6c0bdbadd81",
                      "RecSys Challenge 2015 YooChoose, latest 1/64", "none stated (DGNNs)", """
2104076106efb4795d8ee93331061b83d00d8fd55f5f0c62f0879b59a5c64f6c  665181  session-benchmarks/yoochoose1_64/rsc15_test_raw_ids.tsv.gz
6fd3f624249439c1ebdbf4e1df39e10eaba9f9a1e24d74c964594cbb0cd9bf94  318106  session-benchmarks/yoochoose1_64/test_pairs.tsv.gz
f86e150a36d11489eb10c1fce2bf190e53280e2919972578e2c4ec953bafaff2  128935  session-benchmarks/yoochoose1_64/test_sessions.txt.gz
9e25484ef9657d24f7829f2a8a8abb86683c53f2d85f80272d66b9af245bc50c  955042  session-benchmarks/yoochoose1_64/train_sessions.txt.gz
""", dict(train_sessions=116_167, train_clicks=486_026, train_prefixes=369_859, test_pairs=55_898,
          test_sessions=15_324, test_clicks=71_222, items=17_745, train_items=17_376)),
    "retailrocket": ("retailrocket", "MSJeinlong/CGENet@361cab1829696845656c0b3727a837ff7e1d6991",
                     "Retailrocket e-commerce (Kaggle)", "MIT (CGENet code)", """
69cf0607a0ee01dbbf3db0bdca7357cd2e2a423c24104aee93a762f648b8097a  149129  session-benchmarks/retailrocket/test_pairs.tsv.gz
df978d591d7f301b962fc7070b54d6e954810c5483e5b97fa7b68b0743cc8ab9  73796  session-benchmarks/retailrocket/test_sessions.tsv.gz
f64424b090049b7b0cb16aeb7c0e8a2872bca38b242f34c6b50d64ecb16fadc0  1446949  session-benchmarks/retailrocket/train_sessions.txt.gz
""", dict(train_sessions=126_168, train_clicks=685_984, train_prefixes=559_816, test_pairs=15_132,
          test_sessions=4_735, test_clicks=24_602, items=36_968)),
}
_BENCH_CITATION = ("S. Wu et al. Session-based Recommendation with Graph Neural Networks. AAAI 2019; "
                   "Z. Wang et al. Global Context Enhanced Graph Neural Networks for Session-based "
                   "Recommendation. SIGIR 2020")

# The source pickles (all_train_seq.txt, test.txt) at the commits above: repo, commit, folder,
# (sha256, size) of each. `fetch` downloads them and rebuilds the staged text files exactly.
_GCE_GNN = ("CCIIPLab/GCE-GNN", "212575302e42d64b8cf0b9ffe1b71b0db398d5be")
_BENCH_SOURCES = {
    "diginetica": (*_GCE_GNN, "datasets/diginetica",
                   ("55694865221c682aaa9df6cd5a4ddccff5de902334df5605c5767ee464e11365", 4193626),
                   ("b2b81f9cb22feb2174feeb3e678b9de5e41ff1653bf23cdaf9046e5404f002ff", 1384823)),
    "nowplaying": (*_GCE_GNN, "datasets/Nowplaying",
                   ("963019b0853b49273f81ba591b30be600194f74f71f11e8fc4cf549591416052", 3869978),
                   ("2c51533a05683877c7e696506a410f13216d93886466fd83c3153166829bfcb9", 2462542)),
    "yoochoose1-64": ("YuhanZhen/WSDM23-DGNNs--for-Session-based-Recommendation",
                      "a1f246cc2e4914582829fdb15b89b6c0bdbadd81", "datasets/yoochoose1_64",
                      ("41408f34a4dcfcd406e034fa14e4b2b583d66fedb1b85d1257645797b94988ae", 2379816),
                      ("3006ec5cb4b695261efd7b2c5780586b0a5e95e948013e356de8fe45188b6375", 1508454)),
    "retailrocket": ("MSJeinlong/CGENet", "361cab1829696845656c0b3727a837ff7e1d6991", "datasets/retailrocket",
                     ("f0fc2bed6f2523a4fce2fe75a14f4788865c0461afead1566ba51273438908a4", 2547840),
                     ("cbbf1693a3c548390177a56227fe119b93b51cd90445c9224fe52ce50e32a400", 594575)),
}
_KEVIN = ("kevingodlike/kevin", "de543d33d97658de54730063d3c740ac39480a5e")
_RAW_ID_SOURCES = {  # gzip -n -6 of these unchanged files
    "cikm16_test_raw_ids.tsv.gz": Source(raw_url(*_KEVIN, "cmki16_test.txt"),
                                         "6ea3b160fbcba8e7075c9e35f700227133f43bca6c0b2c2767884aec84c189f7", 2582285),
    "rsc15_test_raw_ids.tsv.gz": Source(raw_url(*_KEVIN, "rsc15_test.txt"),
                                        "12a9cfb7af9c3bb8b9bb43d9c505abc7160cd61bdc185964e7e66964ad7d7f7f", 2484938),
}
_BENCH_CONVERTERS = {"train_sessions": ("sessions-train", 0), "test_pairs": ("sessions-test-pairs", 1),
                     "test_sessions": ("sessions-test-sessions", 1)}  # converter, source pickle


def _bench_recipes(repo: str, commit: str, folder: str, train: tuple, test: tuple):
    pickles = [Source(raw_url(repo, commit, f"{folder}/{file}"), *sha_size)
               for file, sha_size in (("all_train_seq.txt", train), ("test.txt", test))]

    def for_file(rel: str):
        base = rel.rsplit("/", 1)[1]
        if base in _RAW_ID_SOURCES:
            return recipe("gzip", _RAW_ID_SOURCES[base], level=6)
        convert, which = _BENCH_CONVERTERS[base.split(".")[0]]
        return recipe(convert, pickles[which])
    return for_file


for _name, (_folder, _source, _what, _licence, _table, _counts) in _BENCH.items():
    _files = file_table(_table, note=_PICKLE_NOTE, optional=("_raw_ids.tsv.gz",),
                        recipes=_bench_recipes(*_BENCH_SOURCES[_name]))
    _files = {rel: replace(fs, note=_RAW_NOTE) if not fs.required else fs for rel, fs in _files.items()}
    register(DatasetSpec(
        _name, "session-benchmark", f"{_what}: SR-GNN-protocol next-item benchmark (train sessions, "
        "test prefixes -> next item)", _files, _BENCH_CITATION, _licence, _source, _counts,
        partial(load_srgnn_benchmark, name=_name, folder=_folder)))

register(DatasetSpec(
    "diginetica-sample", "sessions",
    "SR-GNN's DIGINETICA item-view sample with product categories and purchases (original ids)",
    {**file_table("""
98da96e05c87ef12b739e4bfd9bc7b4864106ee77371f1db9eb4413e3f78d37e  395354  diginetica/sample_train-item-views.csv
""", repo="CRIPAC-DIG/SR-GNN", commit="e21cfa431f74c25ae6e4ae9261deefe11d1cb488",
        remote_path=lambda rel: "datasets/sample_train-item-views.csv"),
     **file_table("""
9e9566e34548e5d1b8d05ed6dd0222fbb8a7b7b2a8a18cdf28c1a4eba8f9e42c  1979575  diginetica/product-categories.csv
d6d3ce5b2df5d75a87fb0621f384aaf187ee1736bc46fcc58bb303ddc38d0658  749277  diginetica/train-purchases.csv
""", repo="RecoHut-Datasets/diginetica", commit="2672053d53bf74e6e8eec77e684e4e7b6bc5da8c")},
    "CIKM Cup 2016 DIGINETICA; " + _BENCH_CITATION.split(";")[0], "none stated",
    "CRIPAC-DIG/SR-GNN@e21cfa431f74c25ae6e4ae9261deefe11d1cb488, "
    "RecoHut-Datasets/diginetica@2672053d53bf74e6e8eec77e684e4e7b6bc5da8c",
    dict(rows=12_391, sessions=2_986, items=7_139, categories_rows=184_047, categories=1_217,
         purchases=18_025, purchase_sessions=12_630, purchase_items=11_244),
    load_diginetica_sample))

register(DatasetSpec(
    "yoochoose-100k", "sessions", "session-rec's 100k-click YooChoose sample, time split "
    "(train_full/test, train_tr/train_valid)",
    file_table("""
380410c606403531019e1ec0b4d192ef90492d594b9b5a91633b860618dd7136  414350  yoochoose-sample/yoochoose-clicks-100k_test.txt
9842c90358298ee784fcf0c9dccb2eeb283ab04368e53bdeee896747f4c03e1e  2146008  yoochoose-sample/yoochoose-clicks-100k_train_full.txt
fb4c6381c8e5bc4de51553cb1ed210fb4016c87d2425d58344cd6b19e81c133a  1626198  yoochoose-sample/yoochoose-clicks-100k_train_tr.txt
14fca72e690c19b0da391059b7cf2c1b611cddbd1248ce93578a039ddb26ea69  505021  yoochoose-sample/yoochoose-clicks-100k_train_valid.txt
""", repo="rn5l/session-rec", commit="5dcd583cbd8d44703a5248b9a308945f24b91390",
        remote_path=lambda rel: "data/rsc15/prepared/" + rel.rsplit("/", 1)[1]),
    "D. Ben-Shimon et al. RecSys Challenge 2015 and the YOOCHOOSE Dataset. RecSys 2015; "
    "M. Ludewig et al. Empirical analysis of session-based recommendation algorithms. UMUAI 2021",
    "none stated", "rn5l/session-rec@5dcd583cbd8d44703a5248b9a308945f24b91390",
    {"train_full": (70_278, 17_794, 2_933), "test": (13_568, 3_416, 1_771),  # (rows, sessions, items)
     "train_tr": (53_254, 13_629, 2_873), "train_valid": (16_539, 4_084, 2_029)},
    load_yoochoose_100k))

register(DatasetSpec(
    "otto-sample", "sessions", "OTTO RecSys dataset: the first 20 training sessions (format tests)",
    file_table("""
8994e47578f7467191185e612080696030495b6041015a6550b9d8af57f7c826  43944  otto-sample/otto_train_first20_sessions.jsonl
""", repo="otto-de/recsys-dataset", commit="f404284240ac654d0b924b2fabec0aea7b23f168",
        remote_path=lambda rel: "test/resources/train.jsonl"),
    "OTTO RecSys dataset, otto-de/recsys-dataset", "CC-BY 4.0 (data), MIT (code)",
    "otto-de/recsys-dataset@f404284240ac654d0b924b2fabec0aea7b23f168",
    dict(sessions=20, events=862, clicks=800, carts=52, orders=10, items=510), load_otto_sample))

_TRIVAGO_PARQUET = file_table("""
beaf6164ef2fe26d82a3067418ae1868bad927d89d99483ace8e637e2e1cd028  2786895  trivago-sample/trivago_val_100k.parquet.snappy
""", repo="RecoHut-Datasets/trivago", commit="22c121d79e2624664e02ace2d86b7b2f2957a6be")
_parquet = _TRIVAGO_PARQUET["trivago-sample/trivago_val_100k.parquet.snappy"]
register(DatasetSpec(
    "trivago-sample", "sessions", "trivago RecSys Challenge 2019 session log, first ~100k rows",
    {**_TRIVAGO_PARQUET,
     **file_table("""
96ac02cff0e43675b766edc2b9f7fb8e5ff211c99410e66233d9d53d8ad87ca3  2123523  trivago-sample/trivago_val_100k.csv.gz
""", note="the parquet table written as gzipped CSV by the dataset staging", optional=(".csv.gz",),
        recipes=lambda rel: recipe("parquet-csv-gz", Source(_parquet.url, _parquet.sha256, _parquet.size)))},
    "P. Knees et al. RecSys Challenge 2019: Session-based hotel recommendations. RecSys 2019",
    "none stated (trivago's challenge terms)", "RecoHut-Datasets/trivago@22c121d79e2624664e02ace2d86b7b2f2957a6be",
    dict(rows=100_003, sessions=7_612, users=6_593, clickouts=13_597), load_trivago_sample))
