"""Top-k (all-ranking) collaborative-filtering benchmarks with fixed public splits: Gowalla
(LightGCN split), MovieLens 1M implicit (LCFN / UltraGCN split) and Last.fm (LightGCN++ split).

Each file holds one user per line, ``user item item ...`` (ids from 0). The papers' protocol:
train on train (+ valid for the final fit), rank every item not in the user's training row,
Recall@20 and NDCG@20 averaged over test users; settings are chosen on valid (Gowalla,
Last.fm) or on a part of train held out per user (ML-1M, which has no valid file).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

import numpy as np

from sketchrec.data.loaders._parse import read_int_lines
from sketchrec.data.registry import DatasetSpec, Source, file_table, raw_url, recipe, register
from sketchrec.data.sessions import Sessions


@dataclass
class TopkBenchmark:
    """Per-user train / valid / test item sets over one user and item universe.

    train, valid, test : `Sessions` with one row per user (row u = user u; empty rows for users
        with nothing in that part); valid is None when the split has no validation part.
    """

    name: str
    train: Sessions
    valid: Sessions | None
    test: Sessions
    meta: dict = field(default_factory=dict)

    @property
    def n_users(self) -> int:
        return len(self.train)

    @property
    def n_items(self) -> int:
        return self.train.n_items

    def fit_rows(self) -> Sessions:
        """What the final model trains on: train ∪ valid per user."""
        return self.train if self.valid is None else union_rows(self.train, self.valid)

    def evaluation(self) -> tuple[Sessions, Sessions]:
        """(inputs, targets) for the users with a test item: each user's `fit_rows` history
        (scored and excluded from the ranking) and their test items."""
        users = np.flatnonzero(np.diff(self.test.indptr) > 0)
        return self.fit_rows().take(users), self.test.take(users)

    def validation(self, share: float = 0.1, seed: int = 0) -> "TopkBenchmark":
        """The benchmark to choose settings on, never touching test: train vs valid when the
        split has a valid part, else a random `share` of every user's training items held out
        (users with one training item keep it)."""
        if self.valid is not None:
            return TopkBenchmark(f"{self.name}/validation", self.train, None, self.valid, self.meta)
        fit, held = holdout_per_row(self.train, share, seed)
        return TopkBenchmark(f"{self.name}/validation", fit, None, held, self.meta)

    def __repr__(self) -> str:
        valid = "none" if self.valid is None else f"{self.valid.nnz:,}"
        return (f"TopkBenchmark({self.name!r}: {self.n_users:,} users, {self.n_items:,} items; "
                f"train {self.train.nnz:,}, valid {valid}, test {self.test.nnz:,} pairs)")


def rows_from_pairs(users: np.ndarray, items: np.ndarray, n_users: int, n_items: int) -> Sessions:
    """`Sessions` with row u = the items of user u, in the order given (stable by user)."""
    order = np.argsort(users, kind="stable")
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(users, minlength=n_users), out=indptr[1:])
    return Sessions(indptr, items[order], n_items)


def _pairs(rows: Sessions) -> tuple[np.ndarray, np.ndarray]:
    return np.repeat(np.arange(len(rows)), np.diff(rows.indptr)), rows.items


def union_rows(a: Sessions, b: Sessions) -> Sessions:
    """Row-wise concatenation of two per-user `Sessions` of the same users (a's items first)."""
    if len(a) != len(b):
        raise ValueError(f"{len(a)} rows and {len(b)} rows: not the same users")
    ua, ia = _pairs(a)
    ub, ib = _pairs(b)
    return rows_from_pairs(np.concatenate([ua, ub]), np.concatenate([ia, ib]), len(a),
                           max(a.n_items, b.n_items))


def holdout_per_row(rows: Sessions, share: float, seed: int) -> tuple[Sessions, Sessions]:
    """Split every row at random into kept and held-out items: round(share · length) held out,
    at least one when the row has two or more items, never the whole row."""
    if not 0 < share < 1:
        raise ValueError(f"share must lie in (0, 1), got {share}")
    rng = np.random.default_rng(seed)
    users, items = _pairs(rows)
    lengths = np.diff(rows.indptr)
    order = np.lexsort((rng.random(len(items)), users))        # random order within each row
    position = np.empty(len(items), dtype=np.int64)
    position[order] = np.arange(len(items)) - np.repeat(rows.indptr[:-1], lengths)
    n_held = np.clip(np.rint(share * lengths), np.minimum(lengths - 1, 1), np.maximum(lengths - 1, 0))
    held = position < np.repeat(n_held.astype(np.int64), lengths)
    keep = rows_from_pairs(users[~held], items[~held], len(rows), rows.n_items)
    return keep, rows_from_pairs(users[held], items[held], len(rows), rows.n_items)


def load_topk_benchmark(paths: dict, *, name: str) -> TopkBenchmark:
    """The files of one split -> `TopkBenchmark` (users and items numbered as in the files)."""
    parts = {}
    for part in ("train", "valid", "test"):
        rel = next((r for r in paths if r.endswith(f"/{part}.txt.gz")), None)
        if rel is None:
            continue
        indptr, values = read_int_lines(paths[rel])
        lengths = np.diff(indptr)
        if np.any(lengths == 0):
            raise ValueError(f"{paths[rel]}: a line without a user id")
        heads = indptr[:-1]
        users = values[heads]
        keep = np.ones(len(values), dtype=bool)
        keep[heads] = False
        parts[part] = (np.repeat(users, lengths - 1), values[keep])
    n_users = int(max(u.max(initial=-1) for u, _ in parts.values())) + 1
    n_items = int(max(i.max(initial=-1) for _, i in parts.values())) + 1
    rows = {part: rows_from_pairs(u.astype(np.int64), i.astype(np.int32), n_users, n_items)
            for part, (u, i) in parts.items()}
    return TopkBenchmark(name, rows["train"], rows.get("valid"), rows["test"])


# -- registration -------------------------------------------------------------------------
# The staged files are `gzip -n -9` of the unchanged originals (checked: re-made byte for byte);
# the originals' sha256 and sizes below were computed from them and agree with the README.

_LIGHTGCN = ("gusye1234/LightGCN-PyTorch", "947ca2b3b1d2d3545b114145710cb06c4e57b3d2")
_LIGHTGCNPP = ("geon0325/LightGCNpp", "a394f79a7aceb8f485f6bcb549b4865fe83f1d49")
_RECZOO = ("reczoo/RecZoo", "fd2379d3b5df99d23513a8c423c083d27a45126d")

_ORIGINALS = {  # staged relpath -> (repo, commit, path, sha256, size) of the original text file
    "topk-benchmarks/gowalla/test.txt.gz": (*_LIGHTGCN, "data/gowalla/test.txt",
                                            "099a2a73924e4b754dc6efd730d764f492321b53c38eb93298850c83acf57be3", 1372559),
    "topk-benchmarks/gowalla/train.txt.gz": (*_LIGHTGCNPP, "data/gowalla/train.txt",
                                             "d47e01d060624f389956c0b2f89a1ed8c453ea158631cd2b5320c241f3e1a073", 4132444),
    "topk-benchmarks/gowalla/valid.txt.gz": (*_LIGHTGCNPP, "data/gowalla/valid.txt",
                                             "ddc22c1cd9a7d14fd5cd0c98b1473b614f4323038fef74ae0d28cc9c92a08ba2", 669008),
    "topk-benchmarks/lastfm/test.txt.gz": (*_LIGHTGCNPP, "data/lastfm/test.txt",
                                           "0f0a15e3de2f868554ee1e32190c51db3e0ad0c4138e1428c66ba6de86102755", 93806),
    "topk-benchmarks/lastfm/train.txt.gz": (*_LIGHTGCNPP, "data/lastfm/train.txt",
                                            "1845769cb1a9834692d3cf884de523d23aa126fa6b58eb5f49e9628e8c317705", 300863),
    "topk-benchmarks/lastfm/valid.txt.gz": (*_LIGHTGCNPP, "data/lastfm/valid.txt",
                                            "9ae3440becfcbba19d5a5a8298b7933126f89424a468de5765bf1c6f08a9e3eb", 50860),
    "topk-benchmarks/ml-1m/test.txt.gz": (*_RECZOO, "data/Movielens1M_m1/test.txt",
                                          "c8b4f275ea29fdb5560f0d9014d85a3865743f3089dca0259c79fee30dcdbdcd", 482621),
    "topk-benchmarks/ml-1m/train.txt.gz": (*_RECZOO, "data/Movielens1M_m1/train.txt",
                                           "31fe589506162c76c90e87ddd017642f73655a3f959bd70deec8dda142608f4e", 3660330),
}


def _gzip_recipe(rel: str):
    repo, commit, path, sha, size = _ORIGINALS[rel]
    return recipe("gzip", Source(raw_url(repo, commit, path), sha, size), level=9)


_NOTE = "gzip -n -9 of the unchanged original (its sha256 is in the registry); fetch rebuilds it"
_PROTOCOL = ("Recall@20 / NDCG@20 over test users, all items not in the user's training row ranked")

_TOPK = {
    "gowalla": (
        "Gowalla check-ins, LightGCN split (train / valid / test)",
        """
aa35b5539b086969dbc611e26ca1b856208beeb7c1688bdc519d0debba7855b1  1790027  topk-benchmarks/gowalla/train.txt.gz
4a22e3619724602dce32bf5177746901a7db3da5f3ab7292d5d79b92bf3c2b83  292369  topk-benchmarks/gowalla/valid.txt.gz
23368b745faf7cf0201859230872db6ccf13e23cbaf0c844de53c94b6f8888ea  598443  topk-benchmarks/gowalla/test.txt.gz
""",
        "E. Cho, S. A. Myers, J. Leskovec. Friendship and Mobility. KDD 2011; X. He et al. LightGCN. "
        "SIGIR 2020; G. Lee et al. LightGCN++. RecSys 2024",
        "Gowalla from SNAP (public); LightGCN code MIT", f"{_LIGHTGCN[0]}@{_LIGHTGCN[1]}, {_LIGHTGCNPP[0]}@{_LIGHTGCNPP[1]}",
        dict(users=29_858, items=40_981, train=719_081, valid=91_047, test=217_242,
             published={"LightGCN": (0.1830, 0.1554), "UltraGCN": (0.1862, 0.1580),
                        "Mult-VAE": (0.1641, 0.1335), "NGCF": (0.1570, 0.1327)})),
    "ml-1m": (
        "MovieLens 1M implicit, LCFN / UltraGCN split (train / test; select on a part of train)",
        """
037dd2ed77415037cbb1f0d9db24143bf1fd67c75d95be0723e3305d05800baf  1216275  topk-benchmarks/ml-1m/train.txt.gz
dc0517b0a36b7e7f676f7397b035cb4071f6f85f1b33dcd917231481a91802e9  197770  topk-benchmarks/ml-1m/test.txt.gz
""",
        "F. M. Harper, J. A. Konstan. The MovieLens Datasets. TiiS 2015; W. Yu, Z. Qin. LCFN. ICML 2020; "
        "K. Mao et al. UltraGCN. CIKM 2021",
        "MovieLens terms (GroupLens): research use; RecZoo Apache-2.0", f"{_RECZOO[0]}@{_RECZOO[1]}",
        dict(users=6_022, items=3_043, train=796_244, test=99_455,
             published={"UltraGCN": (0.2787, 0.2642), "LightGCN": (0.2576, 0.2427),
                        "NGCF": (0.2513, 0.2511)})),
    "lastfm": (
        "Last.fm listening, LightGCN++ split (train / valid / test; small, for fast checks)",
        """
b749680a88365264255a2c91e858480fe89bc503ee942039e2c112331184236c  128043  topk-benchmarks/lastfm/train.txt.gz
d33dab5f618592d9bb404bad943e6ae87ff5d5dbc2e52b5d601335623d1f4148  22875  topk-benchmarks/lastfm/valid.txt.gz
f159d7022d12d034ef3914dbe91d4696db9336297a38d3ce3db3e2412a49ffe8  40607  topk-benchmarks/lastfm/test.txt.gz
""",
        "I. Cantador, P. Brusilovsky, T. Kuflik. HetRec 2011; G. Lee et al. LightGCN++. RecSys 2024",
        "HetRec 2011 Last.fm terms (research use)", f"{_LIGHTGCNPP[0]}@{_LIGHTGCNPP[1]}",
        dict(users=1_885, items=17_388, train=64_315, valid=9_143, test=18_321)),
}

for _name, (_what, _table, _citation, _licence, _source, _counts) in _TOPK.items():
    register(DatasetSpec(
        _name, "topk-benchmark", f"{_what}. {_PROTOCOL}",
        file_table(_table, note=_NOTE, recipes=_gzip_recipe),
        _citation, _licence, _source, _counts, partial(load_topk_benchmark, name=_name)))
