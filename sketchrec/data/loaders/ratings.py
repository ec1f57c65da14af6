"""Ratings and user histories: MovieLens 100K / latest-small, the ML-100K knowledge
graph, and the Amazon / Yelp sequential-recommendation sets (S3-Rec / ICLRec)."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sketchrec.data.idmap import IdMap
from sketchrec.data.interactions import Interactions
from sketchrec.data.loaders._parse import read_csv, read_int_lines, read_string_columns
from sketchrec.data.readers import read_interactions
from sketchrec.data.registry import DatasetSpec, Source, file_table, raw_url, recipe, register
from sketchrec.data.sessions import Sessions


@dataclass
class KnowledgeGraph:
    """Triples over internal entity / relation ids.

    heads, relations, tails : (n_triples,) int64
    entity_ids, relation_ids : IdMaps to the external (Freebase) ids
    item_entity : pyarrow Table (item_id int64 external item id, entity int64
        internal entity id, -1 if the linked entity is in no triple)
    """

    heads: np.ndarray
    relations: np.ndarray
    tails: np.ndarray
    entity_ids: IdMap
    relation_ids: IdMap
    item_entity: pa.Table

    @property
    def n_triples(self) -> int:
        return len(self.heads)

    def __repr__(self) -> str:
        return (f"KnowledgeGraph(triples={self.n_triples:,}, entities={len(self.entity_ids):,}, "
                f"relations={len(self.relation_ids)}, item_links={self.item_entity.num_rows:,})")


@dataclass
class SequentialDataset:
    """One chronological item sequence per user.

    histories : Sessions, row u = user u's items in time order (no timestamps)
    user_ids, item_ids : IdMaps to the source's integer ids (1-based there)
    """

    name: str
    histories: Sessions
    user_ids: IdMap
    item_ids: IdMap
    meta: dict = field(default_factory=dict)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def __repr__(self) -> str:
        return (f"SequentialDataset({self.name!r}: {self.n_users:,} users, {self.n_items:,} items, "
                f"{self.histories.nnz:,} interactions)")


def _align(table: pa.Table, keys, ids: IdMap) -> pa.Table:
    """Rows of `table` reordered so row i describes internal id i (nulls where absent)."""
    internal = ids.lookup(keys).internal
    row_of = np.full(len(ids), -1, dtype=np.int64)
    known = internal >= 0
    row_of[internal[known]] = np.flatnonzero(known)
    return table.take(pa.array(row_of, mask=row_of < 0))


def _sql_path(path) -> str:
    return str(path).replace("'", "''")


def load_movielens_100k(paths: dict) -> Interactions:
    """MovieLens 100K -> `Interactions` (weight = rating 1..5, timestamp = Unix s).

    items : aligned to internal item ids: item_id, title, release_date,
        imdb_url, genres (list<string>). meta["genre_matrix"] (n_items, 19)
        uint8 multi-hot in u.genre order, meta["genre_names"],
        meta["users"] (aligned to internal user ids: user_id, age, gender,
        occupation, zip_code).
    """
    base = "movielens/ml-100k/"
    sql = (f"SELECT * FROM read_csv('{_sql_path(paths[base + 'u.data'])}', delim='\\t', header=false, "
           f"columns={{'user_id': 'BIGINT', 'item_id': 'BIGINT', 'rating': 'FLOAT', 'ts': 'BIGINT'}})")
    inter = read_interactions(sql=sql, user="user_id", item="item_id", weight="rating", timestamp="ts",
                              timestamp_unit="s")
    genres = read_string_columns(paths[base + "u.genre"], 2, delimiter="|")
    genre_names = [g for g in genres.column("c0").to_pylist() if g]
    cols = ["item_id", "title", "release_date", "video_release_date", "imdb_url"] + genre_names
    raw = read_string_columns(paths[base + "u.item"], len(cols), delimiter="|", encoding="latin1")
    raw = raw.rename_columns(cols)
    item_id = pc.cast(raw.column("item_id"), pa.int64())
    matrix = np.stack([pc.cast(raw.column(g), pa.uint8()).to_numpy() for g in genre_names], axis=1)
    names = np.array(genre_names, dtype=object)
    genre_lists = pa.array([names[row.astype(bool)].tolist() for row in matrix], pa.list_(pa.string()))
    items = pa.table({"item_id": item_id, "title": raw.column("title"),
                      "release_date": raw.column("release_date"), "imdb_url": raw.column("imdb_url"),
                      "genres": genre_lists, "_row": pa.array(np.arange(raw.num_rows))})
    inter.items = _align(items, item_id, inter.item_ids)
    rows = inter.items.column("_row").to_numpy(zero_copy_only=False)
    inter.items = inter.items.drop_columns(["_row"])
    inter.meta["genre_matrix"] = matrix[rows.astype(np.int64)]
    inter.meta["genre_names"] = genre_names
    users = read_string_columns(paths[base + "u.user"], 5, delimiter="|")
    users = users.rename_columns(["user_id", "age", "gender", "occupation", "zip_code"])
    users = users.set_column(0, "user_id", pc.cast(users.column("user_id"), pa.int64()))
    users = users.set_column(1, "age", pc.cast(users.column("age"), pa.int64()))
    inter.meta["users"] = _align(users, users.column("user_id"), inter.user_ids)
    inter.meta["dataset"] = "movielens-100k"
    return inter


def load_movielens_latest_small(paths: dict) -> Interactions:
    """MovieLens latest-small -> `Interactions` (weight = rating 0.5..5, timestamp = Unix s).

    items : aligned to the internal ids of the 9,724 rated movies: item_id,
        title, genres (list<string>). meta["movies"] (all 9,742), meta["tags"],
        meta["links"]: the source tables as pyarrow Tables.
    """
    base = "movielens/ml-latest-small/"
    inter = read_interactions(paths[base + "ratings.csv"], user="userId", item="movieId",
                              weight="rating", timestamp="timestamp", timestamp_unit="s")
    movies = read_csv(paths[base + "movies.csv"], column_types={"movieId": pa.int64()})
    items = pa.table({"item_id": movies.column("movieId"), "title": movies.column("title"),
                      "genres": pc.split_pattern(movies.column("genres"), "|")})
    inter.items = _align(items, movies.column("movieId"), inter.item_ids)
    inter.meta.update(movies=movies, tags=read_csv(paths[base + "tags.csv"]),
                      links=read_csv(paths[base + "links.csv"], column_types={"imdbId": pa.string(),
                                                                              "tmdbId": pa.string()}),
                      dataset="movielens-latest-small")
    return inter


def load_ml100k_kg(paths: dict) -> KnowledgeGraph:
    """RecBole's ML-100K knowledge graph (`ml-100k.kg`) and item links (`ml-100k.link`)."""
    base = "movielens/ml-100k-recbole-kg/"
    kg = read_string_columns(paths[base + "ml-100k.kg"], 3, skip_rows=1)
    entity_ids, codes = IdMap.factorize(pa.concat_arrays([kg.column("c0").combine_chunks(),
                                                          kg.column("c2").combine_chunks()]),
                                        name="entity")
    relation_ids, rel = IdMap.factorize(kg.column("c1").combine_chunks(), name="relation")
    n = kg.num_rows
    link = read_string_columns(paths[base + "ml-100k.link"], 2, skip_rows=1)
    item_entity = pa.table({"item_id": pc.cast(link.column("c0"), pa.int64()),
                            "entity": entity_ids.lookup(link.column("c1").combine_chunks()).internal})
    return KnowledgeGraph(codes[:n].astype(np.int64), rel.astype(np.int64), codes[n:].astype(np.int64),
                          entity_ids, relation_ids, item_entity)


def load_sequential(paths: dict, *, name: str, file: str) -> SequentialDataset:
    """`user item item ...` per line -> `SequentialDataset` (row order = file order)."""
    indptr, values = read_int_lines(paths[f"sequential-rec/{file}"])
    first = indptr[:-1]
    user_ids = IdMap(values[first], name="user")
    keep = np.ones(len(values), dtype=bool)
    keep[first] = False
    item_ids, codes = IdMap.factorize(values[keep], name="item")
    item_indptr = indptr - np.arange(len(indptr))
    return SequentialDataset(name, Sessions(item_indptr, codes, len(item_ids), row_ids=values[first]),
                             user_ids, item_ids, meta={"file": file})


# -- catalogue ---------------------------------------------------------------------

_ML_CITATION = ("F. M. Harper, J. A. Konstan. The MovieLens Datasets: History and Context. "
                "ACM TiiS 5(4), 2015")
_ML_LICENCE = ("GroupLens usage licence (research use, acknowledge, no commercial use without "
               "permission; see the README inside the dataset)")
_ML_REPO = dict(repo="hasstariq/Collaborative-Filltering-", commit="02202ae65f474026d8fedcdd87b4e7c60ef13cc4",
                remote_path=lambda rel: rel.split("/", 1)[1])

register(DatasetSpec(
    "movielens-100k", "ratings", "MovieLens 100K ratings with movie genres and user demographics",
    file_table("""
4883b8cf340ed0059971b33f56ad3adc88a40792108ebca3d24aafc4c82e8b52  6750  movielens/ml-100k/README
06416e597f82b7342361e41163890c81036900f418ad91315590814211dca490  1979173  movielens/ml-100k/u.data
9757e0d3e6b298159a80dd48eaf938114690e911e39af97a76949ef1663610bb  202  movielens/ml-100k/u.genre
5b0a40b2e47a729ee6203063f6dcf8790c2e63f5a18663e6ee318a72c5f3c27b  36  movielens/ml-100k/u.info
553841ebc7de3a0fd0d6b62a204ea30c1e651aacfb2814c7a6584ac52f2c5701  236344  movielens/ml-100k/u.item
cd5fbec9afe345d993a62fc7817df1a4a9079c4feb267b3118763b8fd942137d  193  movielens/ml-100k/u.occupation
f120e114da2e8cf314fd28f99417c94ae9ddf1cb6db8ce0e4b5995d40e90e62c  22628  movielens/ml-100k/u.user
""", optional=("README", "u.info", "u.occupation"), **_ML_REPO),
    _ML_CITATION, _ML_LICENCE, "hasstariq/Collaborative-Filltering-@02202ae65f474026d8fedcdd87b4e7c60ef13cc4",
    dict(ratings=100_000, users=943, items=1_682), load_movielens_100k))

register(DatasetSpec(
    "movielens-latest-small", "ratings", "MovieLens latest-small ratings with titles, genres, tags",
    file_table("""
e165937702ae1fac9237b6bd377f03d027f7ef97175d4a04a203e8b12d5516ea  8344  movielens/ml-latest-small/README.txt
97ad18e4e56a09363c65676b6cb3482ce3e2cea2372a24620c1599c843325f31  197979  movielens/ml-latest-small/links.csv
5a5f32dd9bb3797b8e728a1b98958789d2b13f294a69fdfbc5727f8a9611aa07  494431  movielens/ml-latest-small/movies.csv
aa289ca83157595d0df6aea1be6a4ded676ddc4385472e8313a8ed9805352646  2483723  movielens/ml-latest-small/ratings.csv
92a9f8bb7916dceef6151209845788c3643f794dfa79d1feaec7121b5960399d  118660  movielens/ml-latest-small/tags.csv
""", optional=("README.txt",), **_ML_REPO),
    _ML_CITATION, _ML_LICENCE, "hasstariq/Collaborative-Filltering-@02202ae65f474026d8fedcdd87b4e7c60ef13cc4",
    dict(ratings=100_836, users=610, items=9_724, movies=9_742, tags=3_683, links=9_742),
    load_movielens_latest_small))

register(DatasetSpec(
    "ml-100k-kg", "ratings", "RecBole's Freebase knowledge graph for MovieLens 100K items",
    file_table("""
200a0636fa07c218119a42e5bac7aa3e26e3665a6f919c1b22909bd412b14779  3515608  movielens/ml-100k-recbole-kg/ml-100k.kg
524dca2c3d62619688ab99b3ec53ea2acb9b64d38eafec3e02bdd0dc6bb7d948  21507  movielens/ml-100k-recbole-kg/ml-100k.link
""", repo="RUCAIBox/RecBole", commit="7b02be5ec80a88310f2d04a27a82adfcbb5dc211",
        remote_path=lambda rel: "recbole/dataset_example/ml-100k/" + rel.rsplit("/", 1)[1]),
    "W. X. Zhao et al. RecBole: Towards a Unified, Comprehensive and Efficient Framework for "
    "Recommendation Algorithms. CIKM 2021", "MIT (RecBole repository)",
    "RUCAIBox/RecBole@7b02be5ec80a88310f2d04a27a82adfcbb5dc211",
    dict(triples=91_631, relations=24, entities=34_628, links=1_598), load_ml100k_kg))

_SEQ = {
    "beauty": ("Beauty.txt.gz", "Amazon Beauty", """
7910b4a4d25c7d898e2d5711477cba5f87e172cb4b7c9a1af1ead4bcf88f6a6b  455927  sequential-rec/Beauty.txt.gz
""", dict(users=22_363, items=12_101, interactions=198_502, min_length=5)),
    "sports": ("Sports_and_Outdoors.txt.gz", "Amazon Sports and Outdoors", """
585bb47fdf81780c2c1b8dd45c238d8ab5f76417d25dc97bfa061c7fa7b1559d  722284  sequential-rec/Sports_and_Outdoors.txt.gz
""", dict(users=35_598, items=18_357, interactions=296_337, min_length=5)),
    "toys": ("Toys_and_Games.txt.gz", "Amazon Toys and Games", """
20d7f2c7cf98414e77254815470f4dc85aa58d919135fb261c957b16c6430fc6  391945  sequential-rec/Toys_and_Games.txt.gz
""", dict(users=19_412, items=11_924, interactions=167_597, min_length=5)),
    "yelp": ("Yelp.txt.gz", "Yelp", """
3c7a13d16fffbb265b1ebea41991f95c8aad8789a6e016733a6166aa26223e6d  786807  sequential-rec/Yelp.txt.gz
""", dict(users=30_431, items=20_033, interactions=316_354, min_length=5)),
}
_ICLREC = ("salesforce/ICLRec", "2890e6c3ff6a22c6699fc19cb863b66786c1cde4")
_SEQ_SOURCES = {  # (sha256, size) of the unchanged data/<name>.txt; the staged file is `gzip -n -6` of it
    "beauty": ("226cce9c3105299ca0db9615d7d3fb32b3175e90da43100ae352599f0f0107b8", 1090094),
    "sports": ("2a095e0648872beb9982408958290f5d655db5be2911c3756b5446de9f0b8de2", 1707483),
    "toys": ("176c680c688d497598c4a89a03b402c0fe78d795e5db335c2e78dd5f2d778a3f", 922166),
    "yelp": ("724b219106b81dd2349027da997334ddb6da9fe2f152ad6e0d97a93170f7caed", 1814224),
}
for _name, (_file, _what, _table, _counts) in _SEQ.items():
    _original = Source(raw_url(*_ICLREC, f"data/{_file[:-3]}"), *_SEQ_SOURCES[_name])
    register(DatasetSpec(
        _name, "sequential", f"{_what} user sequences (5-core, chronological; S3-Rec / ICLRec)",
        file_table(_table, note=f"gzip of the unchanged salesforce/ICLRec data/{_file[:-3]} (its sha256 is "
                   "in the README); a re-made gzip differs in its header bytes",
                   recipes=lambda rel, src=_original: recipe("gzip", src, level=6)),
        "K. Zhou et al. S3-Rec. CIKM 2020; Y. Chen et al. ICLRec. WWW 2022; R. He, J. McAuley. WWW 2016; "
        "J. McAuley et al. SIGIR 2015", "BSD-3-Clause (ICLRec); Amazon / Yelp data terms",
        "salesforce/ICLRec@2890e6c3ff6a22c6699fc19cb863b66786c1cde4", _counts,
        partial(load_sequential, name=_name, file=_file)))
