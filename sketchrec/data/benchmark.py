"""`SessionBenchmark`: a next-item benchmark with fixed train / test parts."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pyarrow as pa

from sketchrec.data.idmap import IdMap
from sketchrec.data.sessions import Sessions, expand_prefixes, validation_split


@dataclass
class SessionBenchmark:
    """Training sessions and next-item test pairs over one item universe.

    train : training sessions (internal item ids; row order = time order)
    test_prefixes : (n_pairs rows) session prefixes to score
    test_targets : (n_pairs,) int32 next item of each prefix
    item_ids : external item id of every internal id
    test_sessions : the whole test sessions, when known
    """

    name: str
    train: Sessions
    test_prefixes: Sessions
    test_targets: np.ndarray
    item_ids: IdMap
    test_sessions: Sessions | None = None
    meta: dict = field(default_factory=dict)

    @property
    def n_items(self) -> int:
        return self.train.n_items

    @classmethod
    def from_sessions(cls, name: str, train: Sessions, test: Sessions, item_ids: IdMap,
                      **meta) -> "SessionBenchmark":
        prefixes, targets = expand_prefixes(test)
        return cls(name, train, prefixes, targets, item_ids, test_sessions=test, meta=meta)

    @classmethod
    def from_files(cls, train: str | Path, test: str | Path, *, session: str = "session_id",
                   item: str = "item_id", time: str | None = "timestamp", name: str | None = None,
                   delimiter: str | None = None, timestamp_unit: str | None = None) -> "SessionBenchmark":
        """A benchmark from your own click files: one row per click (CSV/TSV, optionally
        gzipped, Parquet or JSON lines; anything `read_interactions` reads).

        train, test : the two files (or globs). Every test session gives its (prefix, next item)
            pairs (`expand_prefixes`); test sessions of one click give none.
        session, item, time : column names of the session id, item id and click time (ids of
            any type: strings or integers; time None: rows in file order within a session).
        name : the benchmark's name (default: the training file's stem).

        Raw ids are mapped to 0-based internal ids: the training file's items first, in order
        of first appearance, then items seen only in the test file, so `n_items` covers every
        item and every model can score every test prefix (an item never seen in training is
        simply never recommended well). `item_ids` maps internal ids back to raw ids;
        `meta["test_only_items"]` counts the items seen only in test.

        Raises DataValidationError (naming the file, line, column and value) for a file that
        cannot be read right, ValueError for a file with no clicks or a test file with no pairs.
        """
        from sketchrec.data.readers import read_interactions
        parts = {}
        for role, path in (("train", train), ("test", test)):
            inter = read_interactions(path, user=session, item=item, timestamp=time, delimiter=delimiter,
                                      timestamp_unit=timestamp_unit)
            if len(inter) == 0:
                raise ValueError(f"{role} file {path}: no clicks (columns {session!r}, {item!r})")
            parts[role] = inter
        train_ids = parts["train"].item_ids
        test_raw = parts["test"].item_ids.keys
        look = train_ids.lookup(test_raw)
        new_keys = test_raw.filter(pa.array(~look.known))
        keys = train_ids.keys
        if len(new_keys) and new_keys.type != keys.type:      # e.g. ids read as text in one file only
            keys, new_keys = keys.cast(pa.string()), new_keys.cast(pa.string())
        item_ids = IdMap(pa.concat_arrays([keys, new_keys]), name=item)
        n_items = len(item_ids)
        # test ids: known ones keep their training id, new ones follow the training items
        test_map = look.internal.copy()
        test_map[~look.known] = len(train_ids) + np.arange(len(new_keys))
        train_sessions = replace(parts["train"].to_sessions(), n_items=n_items)
        test_sessions = parts["test"].to_sessions()
        test_sessions = replace(test_sessions, items=test_map[test_sessions.items], n_items=n_items)
        if not (test_sessions.lengths >= 2).any():
            raise ValueError(f"test file {test}: no session has two clicks or more, so there is no "
                             f"(prefix, next item) pair to evaluate (column {session!r} groups the clicks)")
        return cls.from_sessions(name or Path(str(train)).name.split(".")[0], train_sessions, test_sessions,
                                 item_ids, source={"train": str(train), "test": str(test)},
                                 test_only_items=int(len(new_keys)))

    def validation(self, share: float = 0.1) -> "SessionBenchmark":
        """A benchmark for model selection: the last `share` of train sessions become the test part.

        The real test set is not touched: tune on this, report on `self`.
        """
        fit, held_out = validation_split(self.train, share)
        return SessionBenchmark.from_sessions(f"{self.name}/validation", fit, held_out, self.item_ids,
                                              **self.meta)

    def __repr__(self) -> str:
        return (f"SessionBenchmark({self.name!r}: {len(self.train):,} train sessions "
                f"({self.train.nnz:,} clicks), {len(self.test_targets):,} test pairs, "
                f"{self.n_items:,} items)")


# -- export ---------------------------------------------------------------------------------

def write_recbole_files(bench: SessionBenchmark, out_dir: str | Path, name: str | None = None,
                        max_len: int = 50) -> dict:
    """Write `bench` as RecBole benchmark atomic files, so RecBole trains and tests on exactly
    the same pairs: ``<name>.{train,valid,test}.inter`` (session_id:token, item_id_list:token_seq,
    item_id:token; token = internal id + 1; the last `max_len` clicks of each prefix, oldest
    first) from `expand_prefixes` of the training sessions, of `bench.validation(0.1)`'s test
    sessions and of the test sessions, plus ``expected.npz`` (train / test indptr, items and
    targets in internal ids, n_items) to check what RecBole read. Skipped when ``meta.json`` in
    `out_dir` already describes the same data. Returns that meta (counts and a digest)."""
    import hashlib
    import json
    name = name or bench.name
    if bench.test_sessions is None:
        raise ValueError(f"{bench.name}: the benchmark has no whole test sessions to write")
    out_dir = Path(out_dir)
    parts = {}
    for split, sessions in (("train", bench.train), ("valid", bench.validation(0.1).test_sessions),
                            ("test", bench.test_sessions)):
        prefixes, targets = expand_prefixes(sessions)
        session_of_pair = np.repeat(np.arange(len(sessions)), np.maximum(sessions.lengths - 1, 0))
        parts[split] = (prefixes.tail(max_len), targets, session_of_pair)
    if not (np.array_equal(parts["test"][0].items, bench.test_prefixes.tail(max_len).items)
            and np.array_equal(parts["test"][1], bench.test_targets)):
        raise ValueError(f"{bench.name}: expand_prefixes(test_sessions) differs from test_prefixes / test_targets")
    digest = hashlib.blake2b(digest_size=16)
    for prefixes, targets, _ in parts.values():
        for arr in (prefixes.indptr, prefixes.items, targets):
            digest.update(np.ascontiguousarray(arr).tobytes())
    meta = {"format": 1, "name": name, "max_len": max_len, "n_items": int(bench.n_items),
            "digest": digest.hexdigest(), **{f"n_{s}": int(len(v[1])) for s, v in parts.items()}}
    meta_path = out_dir / "meta.json"
    if meta_path.exists() and json.loads(meta_path.read_text()) == meta:
        return meta
    out_dir.mkdir(parents=True, exist_ok=True)
    header = "session_id:token\titem_id_list:token_seq\titem_id:token\n"
    for split, (prefixes, targets, sessions) in parts.items():
        (out_dir / f"{name}.{split}.inter").write_text(header + _inter_text(prefixes, targets, sessions, split[:2]))
    np.savez(out_dir / "expected.npz", n_items=bench.n_items,
             **{f"{s}_{k}": v for s in ("train", "test")
                for k, v in (("indptr", parts[s][0].indptr), ("items", parts[s][0].items), ("targets", parts[s][1]))})
    meta_path.write_text(json.dumps(meta))
    return meta


def _inter_text(prefixes: Sessions, targets: np.ndarray, session_of_pair: np.ndarray, tag: str) -> str:
    """RecBole atomic-file rows `<tag><session>\\t<i1 i2 ... ik>\\t<target>\\n`, token = id + 1.
    Vectorised: the strings of every id are built once, then gathered for every click."""
    n_items, n = prefixes.n_items, len(prefixes)
    ids = np.arange(1, n_items + 1).astype(str).astype(object)
    with_space, with_tab, with_nl = ids + " ", ids + "\t", ids + "\n"
    last = np.zeros(prefixes.nnz, dtype=bool)
    last[prefixes.indptr[1:] - 1] = True
    tokens = np.where(last, with_tab[prefixes.items], with_space[prefixes.items])
    pieces = np.empty(prefixes.nnz + 2 * n, dtype=object)
    head = prefixes.indptr[:-1] + 2 * np.arange(n)              # row r: head, its clicks, tail
    pieces[head] = np.char.add(tag, session_of_pair.astype(str)).astype(object) + "\t"
    pieces[np.arange(prefixes.nnz) + 2 * prefixes.row_of_click() + 1] = tokens
    pieces[prefixes.indptr[1:] + 2 * np.arange(n) + 1] = with_nl[targets]
    return "".join(pieces.tolist())
