"""Align the item ids of two copies of the same sessions by structure alone.

The SR-GNN DIGINETICA benchmark renumbers items 1..43,097 and publishes no map
back to the original DIGINETICA item ids, so `product-categories.csv` cannot be
joined to it. Its test sessions are also staged with original ids
(`session-benchmarks/diginetica/cikm16_test_raw_ids.tsv.gz`), in another session
order and click order. Items are aligned by colour refinement (1-dimensional
Weisfeiler-Lehman) on the bipartite session-item graph of both copies at once:

* an edge joins a session and an item it contains, labelled with the number of
  clicks on the item in that session;
* start: item colour = (clicks, sessions) of the item, session colour =
  (clicks, distinct items) of the session;
* each round, a session's colour becomes (its colour, multiset of (item colour,
  edge label) over its edges), then an item's colour likewise from its
  sessions; multisets are hashed order-free (sum of 64-bit mixed keys) and the
  (old colour, hash) pairs renumbered with `np.unique`, so colours are
  comparable across the two copies;
* stop when the number of colours no longer grows (the stable colouring).

An item is matched when its final colour holds exactly one item of each copy.
Items in a colour holding several items of each copy are left out: most are
provably interchangeable (e.g. two items seen once, in the same session), and
for the rest the colouring gives no evidence. Click order is never used, so the
alignment does not depend on how ties in time were broken.

On the staged DIGINETICA files (15,963 test sessions, 21,131 test items) this
matches 15,487 items one-to-one in about 0.2 s (4 rounds); the 13,562 test
sessions whose items are all matched map onto raw sessions with the same item
multiset, and even with the same click order (timeframe order, never used). Of
the 5,644 ambiguous items, 5,211 are "twins" (same sessions, same click counts
as another item of their colour), which no method can tell apart; for each of
the other 433, pairing it with a candidate and refining again leaves at least
two candidates consistent, so nothing more is forced (that search is not kept here).
`diginetica_categories(..., whole_classes=True)` still gives 3,453 of them a
category, where all their candidates share one (18,940 items in all).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from sketchrec.data.loaders._parse import read_csv
from sketchrec.data.sessions import Sessions

RAW_TEST = "session-benchmarks/diginetica/cikm16_test_raw_ids.tsv.gz"
CATEGORIES = "diginetica/product-categories.csv"

_U = np.uint64


def _mix(x: np.ndarray) -> np.ndarray:
    """splitmix64 finaliser: (n,) uint64 -> (n,) uint64 well-spread hashes."""
    with np.errstate(over="ignore"):
        z = x.astype(_U) + _U(0x9E3779B97F4A7C15)
        z = (z ^ (z >> _U(30))) * _U(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> _U(27))) * _U(0x94D049BB133111EB)
    return z ^ (z >> _U(31))


def _renumber(*cols: np.ndarray) -> np.ndarray:
    """Rows of equal (cols[0][i], cols[1][i], ...) -> equal dense ids 0..k-1 (int64)."""
    _, inv = np.unique(np.stack([np.asarray(c, np.int64) for c in cols], axis=1), axis=0,
                       return_inverse=True)
    return inv.reshape(-1).astype(np.int64)


def _multiset_hash(node_of_edge: np.ndarray, key: np.ndarray, n_nodes: int) -> np.ndarray:
    """(n_nodes,) int64: order-free hash of the multiset of `key` over each node's edges."""
    out = np.zeros(n_nodes, dtype=_U)
    np.add.at(out, node_of_edge, _mix(key))        # wraps mod 2^64: a multiset hash
    return out.view(np.int64)


def _edges(s: Sessions) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (session, item) pairs of `s` and their click counts, each (n_edges,) int64."""
    key = s.row_of_click() * np.int64(s.n_items) + s.items
    key, mult = np.unique(key, return_counts=True)
    return key // s.n_items, key % s.n_items, mult.astype(np.int64)


def refine_colours(sessions_a: Sessions, sessions_b: Sessions, max_rounds: int = 100
                   ) -> tuple[np.ndarray, np.ndarray, int]:
    """Stable colour refinement of the session-item graphs of both copies, jointly.

    Returns (colour_a (sessions_a.n_items,) int64, colour_b (sessions_b.n_items,)
    int64, rounds): equal colours across copies mean "structurally alike";
    items that occur in no session get colour -1.
    """
    parts = [_edges(sessions_a), _edges(sessions_b)]
    # stack both graphs: copy b's sessions and item ids follow copy a's
    n_sess = [len(sessions_a), len(sessions_b)]
    sess = np.concatenate([parts[0][0], parts[1][0] + n_sess[0]])
    item_raw = np.concatenate([parts[0][1], parts[1][1] + sessions_a.n_items])
    mult = np.concatenate([parts[0][2], parts[1][2]])
    used, item = np.unique(item_raw, return_inverse=True)   # compact: used items only
    n_s, n_i = sum(n_sess), len(used)

    ones = np.ones_like(mult)
    item_col = _renumber(np.bincount(item, mult, n_i), np.bincount(item, ones, n_i))
    sess_col = _renumber(np.bincount(sess, mult, n_s), np.bincount(sess, ones, n_s))
    base = int(mult.max(initial=0)) + 1
    n_colours, rounds = -1, 0
    while rounds < max_rounds:
        rounds += 1
        # (neighbour colour, edge label) packed into one integer key
        sess_col = _renumber(sess_col, _multiset_hash(sess, item_col[item] * base + mult, n_s))
        item_col = _renumber(item_col, _multiset_hash(item, sess_col[sess] * base + mult, n_i))
        n_new = int(item_col.max()) + int(sess_col.max()) + 2
        if n_new == n_colours:
            break
        n_colours = n_new

    colour = np.full(sessions_a.n_items + sessions_b.n_items, -1, dtype=np.int64)
    colour[used] = item_col
    return colour[:sessions_a.n_items], colour[sessions_a.n_items:], rounds


def align_items(sessions_a: Sessions, sessions_b: Sessions) -> tuple[np.ndarray, np.ndarray]:
    """Unambiguous item correspondences between two copies of the same sessions.

    sessions_a, sessions_b : the same sessions under two item numberings (any
        session order, any click order inside a session).
    Returns (a_items (k,) int64, b_items (k,) int64), sorted by a_items: item
    a_items[j] of copy a is item b_items[j] of copy b. Only items whose refined
    colour is held by exactly one item on each side are returned.
    """
    return _unique_pairs(*refine_colours(sessions_a, sessions_b)[:2])


def _unique_pairs(col_a: np.ndarray, col_b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(a_items, b_items) of the colours held by exactly one item on each side."""
    n_col = int(max(col_a.max(initial=-1), col_b.max(initial=-1))) + 1
    in_a, in_b = col_a >= 0, col_b >= 0
    count_a = np.bincount(col_a[in_a], minlength=n_col)
    count_b = np.bincount(col_b[in_b], minlength=n_col)
    unique = (count_a == 1) & (count_b == 1)
    a_items = np.flatnonzero(in_a)[unique[col_a[in_a]]]
    b_of_colour = np.full(n_col, -1, dtype=np.int64)
    b_all = np.flatnonzero(in_b)
    b_of_colour[col_b[b_all]] = b_all
    return a_items.astype(np.int64), b_of_colour[col_a[a_items]]


def _session_signatures(s: Sessions, to_common: np.ndarray) -> np.ndarray:
    """(len(s),) int64 order-free hash of each session's item multiset, items mapped by
    to_common (s.n_items,) int64 into a shared id space."""
    rows, items, mult = _edges(s)
    return _multiset_hash(rows, _mix(to_common[items]).view(np.int64) ^ mult, len(s))


def session_multisets_agree(sessions_a: Sessions, sessions_b: Sessions, a_items: np.ndarray,
                            b_items: np.ndarray) -> tuple[int, int]:
    """Check a matching (a_items[j] <-> b_items[j]).

    Returns (n_checked, n_agreeing): the sessions of copy a whose items are all
    matched, and how many of them, mapped to copy b ids, have the item multiset
    of some session of copy b (a consistent matching has n_agreeing == n_checked).
    """
    to_b = np.full(sessions_a.n_items, -1, dtype=np.int64)
    to_b[a_items] = b_items
    full = np.bincount(sessions_a.row_of_click(), to_b[sessions_a.items] < 0,
                       len(sessions_a)) == 0
    sig_a = _session_signatures(sessions_a, to_b)[full]
    sig_b = _session_signatures(sessions_b, np.arange(sessions_b.n_items, dtype=np.int64))
    return int(full.sum()), int(np.isin(sig_a, sig_b).sum())


def read_raw_test(data_dir: str | Path) -> tuple[Sessions, np.ndarray]:
    """The DIGINETICA test sessions with original item ids (RAW_TEST under data_dir).

    Returns (sessions, item_ids): one row per sessionId (ascending), clicks by
    timeframe; sessions.items index item_ids, (sessions.n_items,) int64 sorted
    original DIGINETICA item ids.
    """
    t = read_csv(Path(data_dir) / RAW_TEST, delimiter="\t",
                 column_types={"sessionId": pa.int64(), "itemId": pa.int64(),
                               "timeframe": pa.int64(), "Time": pa.float64()})
    sess, item, frame = (t.column(c).to_numpy() for c in ("sessionId", "itemId", "timeframe"))
    order = np.lexsort((frame, sess))
    sess, item = sess[order], item[order]
    item_ids, codes = np.unique(item, return_inverse=True)
    row = np.cumsum(np.r_[False, sess[1:] != sess[:-1]])
    return Sessions.from_sorted_codes(row, codes.astype(np.int32), len(item_ids)), item_ids


def _category_of(original_ids: np.ndarray, data_dir: str | Path) -> np.ndarray:
    """(n,) int64 categoryId of each original DIGINETICA item id, -1 if it has none."""
    t = read_csv(Path(data_dir) / CATEGORIES, delimiter=";",
                 column_types={"itemId": pa.int64(), "categoryId": pa.int64()})
    keys, cats = t.column("itemId").to_numpy(), t.column("categoryId").to_numpy()
    order = np.argsort(keys, kind="stable")
    pos = np.minimum(np.searchsorted(keys, original_ids, sorter=order), len(keys) - 1)
    hit = keys[order[pos]] == original_ids
    return np.where(hit, cats[order[pos]], -1).astype(np.int64)


def diginetica_categories(bench, data_dir: str | Path, *, whole_classes: bool = False
                          ) -> np.ndarray:
    """Category of every benchmark item, recovered through the test-session alignment.

    bench : the `diginetica` SessionBenchmark (uses bench.test_sessions, bench.n_items).
    data_dir : the staged datasets root (holds RAW_TEST and CATEGORIES).
    whole_classes : False -> only items matched one-to-one by `align_items`.
        True -> also every item whose colour class is ambiguous (as many items
        on each side) but whose candidates on the raw side all have the same
        category: any matching that respects the colouring, which every
        isomorphism does, gives the item that category.
    Returns (bench.n_items,) int64 DIGINETICA categoryId, -1 where unknown
    (all train-only items: they never occur in the raw-id test file).
    """
    raw, raw_ids = read_raw_test(data_dir)
    col_ours, col_raw, _ = refine_colours(bench.test_sessions, raw)
    n_col = int(max(col_ours.max(initial=-1), col_raw.max(initial=-1))) + 1
    raw_cat = _category_of(raw_ids, data_dir)
    # per colour: the category of its raw-side items if they all agree, else -1
    lo = np.full(n_col, np.iinfo(np.int64).max)
    hi = np.full(n_col, -1, dtype=np.int64)
    np.minimum.at(lo, col_raw, raw_cat)
    np.maximum.at(hi, col_raw, raw_cat)
    balanced = (np.bincount(col_ours[col_ours >= 0], minlength=n_col)
                == np.bincount(col_raw, minlength=n_col))
    colour_cat = np.where((lo == hi) & balanced, hi, -1)
    category = np.full(bench.n_items, -1, dtype=np.int64)
    if whole_classes:
        seen = col_ours >= 0
        category[seen] = colour_cat[col_ours[seen]]
    else:
        ours, theirs = _unique_pairs(col_ours, col_raw)
        category[ours] = raw_cat[theirs]
    return category
