"""Graphs with node labels: MUSAE Facebook, Planetoid (converted, never unpickled),
Karate Club social graphs, BlogCatalog, SNAP email graphs; Reddit10K graph classification."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import pyarrow as pa
import scipy.io
import scipy.sparse as sp

from sketchrec.data.loaders._parse import read_csv, read_int_pairs, undirected_unique
from sketchrec.data.convert import PLANETOID_PARTS
from sketchrec.data.registry import DatasetSpec, Source, file_table, recipe, register


@dataclass
class GraphDataset:
    """One graph with optional node labels, features and split.

    edges : (E, 2) int64 node ids in [0, n_nodes). Undirected graphs list each
        edge once as (min, max), sorted, self-loops kept; directed graphs keep
        the source's rows.
    labels : (n_nodes,) int64 class per node (-1 = unlabelled), or for
        multi-label graphs a scipy CSR (n_nodes, n_labels) int8 indicator; None if unlabelled.
    features : optional scipy CSR (n_nodes, n_features) float32.
    split : optional {"train", "val", "test"} -> int64 node ids.
    label_names : optional names of label values 0..C-1.
    """

    name: str
    edges: np.ndarray
    n_nodes: int
    directed: bool
    labels: np.ndarray | sp.csr_matrix | None = None
    features: sp.csr_matrix | None = None
    split: dict | None = None
    label_names: list | None = None
    meta: dict = field(default_factory=dict)

    @property
    def n_edges(self) -> int:
        return len(self.edges)

    @property
    def n_classes(self) -> int:
        if self.labels is None:
            return 0
        if sp.issparse(self.labels):
            return self.labels.shape[1]
        return int(self.labels.max()) + 1

    def adjacency(self, symmetric: bool | None = None) -> sp.csr_matrix:
        """(n, n) binary CSR; symmetric (both directions) by default for undirected graphs."""
        symmetric = not self.directed if symmetric is None else symmetric
        e = self.edges
        if symmetric:
            e = np.concatenate([e, e[:, ::-1]])
        a = sp.csr_matrix((np.ones(len(e), np.float32), (e[:, 0], e[:, 1])),
                          shape=(self.n_nodes, self.n_nodes))
        a.data[:] = 1.0
        return a

    def __repr__(self) -> str:
        kind = "directed" if self.directed else "undirected"
        feats = f", features={self.features.shape[1]}" if self.features is not None else ""
        return (f"GraphDataset({self.name!r}: {self.n_nodes:,} nodes, {self.n_edges:,} {kind} edges, "
                f"{self.n_classes} classes{feats})")


@dataclass
class GraphClassificationDataset:
    """Many small graphs with one label each.

    edges : (E, 2) int64 node ids local to each graph; graph g is
        edges[graph_indptr[g]:graph_indptr[g+1]].
    graph_indptr : (n_graphs + 1,) int64.  labels : (n_graphs,) int64.
    """

    name: str
    edges: np.ndarray
    graph_indptr: np.ndarray
    labels: np.ndarray

    @property
    def n_graphs(self) -> int:
        return len(self.graph_indptr) - 1

    def graph(self, g: int) -> np.ndarray:
        return self.edges[self.graph_indptr[g]:self.graph_indptr[g + 1]]

    def __repr__(self) -> str:
        return f"GraphClassificationDataset({self.name!r}: {self.n_graphs:,} graphs, {len(self.edges):,} edges)"


def _node_labels(path, id_col: str, label_col: str, n: int) -> tuple[np.ndarray, list | None]:
    """Labels aligned by node id; string labels are coded in sorted-name order."""
    t = read_csv(path)
    ids = t.column(id_col).to_numpy()
    values = t.column(label_col)
    labels = np.full(n, -1, dtype=np.int64)
    if pa.types.is_string(values.type) or pa.types.is_large_string(values.type):
        names = sorted(set(values.to_pylist()))
        labels[ids] = np.searchsorted(np.array(names, dtype=object), np.array(values.to_pylist(), dtype=object))
        return labels, names
    labels[ids] = values.to_numpy()
    return labels, None


def _csr_from_lists(lists: dict, n_rows: int) -> sp.csr_matrix:
    """{"row id": [column ids]} (JSON) -> binary CSR float32."""
    rows = np.fromiter((int(k) for k in lists), np.int64, count=len(lists))
    lengths = np.fromiter((len(v) for v in lists.values()), np.int64, count=len(lists))
    cols = np.fromiter((c for v in lists.values() for c in v), np.int64, count=int(lengths.sum()))
    r = np.repeat(rows, lengths)
    m = sp.csr_matrix((np.ones(len(cols), np.float32), (r, cols)), shape=(n_rows, int(cols.max()) + 1))
    m.sum_duplicates()
    return m


def load_facebook(paths: dict) -> GraphDataset:
    """MUSAE Facebook page-page: undirected, 4 page types, sparse binary features."""
    base = "facebook-page-page/musae_facebook_"
    edges = undirected_unique(read_int_pairs(paths[base + "edges.csv"], delimiter=",", header=True))
    target = read_csv(paths[base + "target.csv"])
    n = target.num_rows
    labels, names = _node_labels(paths[base + "target.csv"], "id", "page_type", n)
    with open(paths[base + "features.json"]) as fh:
        features = _csr_from_lists(json.load(fh), n)
    return GraphDataset("facebook-page-page", edges, n, False, labels, features, label_names=names,
                        meta={"pages": target})


def load_planetoid(paths: dict, *, name: str) -> GraphDataset:
    """Cora / CiteSeer / PubMed from `planetoid/converted/` (CSV + npz, no pickle)."""
    base = f"planetoid/converted/{name}_"
    edges = read_int_pairs(paths[base + "edges.csv"], delimiter=",", header=True)
    label_table = read_csv(paths[base + "labels.csv"])
    n = label_table.num_rows
    labels, _ = _node_labels(paths[base + "labels.csv"], "node", "label", n)
    features = None
    if base + "features.npz" in paths:
        features = sp.load_npz(paths[base + "features.npz"]).tocsr().astype(np.float32)
    with open(paths[base + "split.json"]) as fh:
        raw_split = json.load(fh)
    split = {k: np.asarray(v, dtype=np.int64) for k, v in raw_split.items() if isinstance(v, list)}
    return GraphDataset(name, undirected_unique(edges), n, False, labels, features, split,
                        meta={"split_note": raw_split.get("note", "")})


def load_karateclub(paths: dict, *, name: str, folder: str) -> GraphDataset:
    """Karate Club node-level graphs: undirected edges (deduplicated), integer targets."""
    base = f"graphs/karateclub/{folder}/"
    edges = undirected_unique(read_int_pairs(paths[base + "edges.csv"], delimiter=",", header=True))
    n_target = read_csv(paths[base + "target.csv"]).num_rows
    n = max(n_target, int(edges.max()) + 1)
    labels, _ = _node_labels(paths[base + "target.csv"], "id", "target", n)
    features = None
    if base + "features.csv" in paths:  # twitch: node_id, feature_id, value
        f = read_csv(paths[base + "features.csv"])
        features = sp.csr_matrix((f.column("value").to_numpy().astype(np.float32),
                                  (f.column("node_id").to_numpy(), f.column("feature_id").to_numpy())),
                                 shape=(n, int(f.column("feature_id").to_numpy().max()) + 1))
        features.data[:] = 1.0  # binary features; 535 (node, feature) rows repeat in the source
    return GraphDataset(name, edges, n, False, labels, features)


def load_reddit10k(paths: dict) -> GraphClassificationDataset:
    """Reddit threads: 10,000 small graphs, binary label."""
    with open(paths["graphs/karateclub/reddit10k/graphs.json"]) as fh:
        graphs = json.load(fh)
    order = sorted(graphs, key=int)
    parts = [np.asarray(graphs[g], dtype=np.int64).reshape(-1, 2) for g in order]
    indptr = np.zeros(len(parts) + 1, dtype=np.int64)
    np.cumsum([len(p) for p in parts], out=indptr[1:])
    labels, _ = _node_labels(paths["graphs/karateclub/reddit10k/target.csv"], "id", "target", len(order))
    return GraphClassificationDataset("reddit10k", np.concatenate(parts), indptr, labels)


def load_blogcatalog(paths: dict) -> GraphDataset:
    """BlogCatalog: undirected, multi-label (CSR indicator labels, 39 groups)."""
    mat = scipy.io.loadmat(paths["graphs/blogcatalog/blogcatalog.mat"])
    upper = sp.triu(mat["network"], k=0).tocoo()
    edges = undirected_unique(np.stack([upper.row, upper.col], axis=1).astype(np.int64))
    labels = sp.csr_matrix(mat["group"]).astype(np.int8)
    return GraphDataset("blogcatalog", edges, mat["network"].shape[0], False, labels)


def load_email_eu_core(paths: dict) -> GraphDataset:
    """SNAP email-Eu-core: directed (rows as in the source), 42 department labels."""
    edges = read_int_pairs(paths["graphs/email-eu-core/email-Eu-core.txt"], delimiter="\t", header=False)
    dept = read_int_pairs(paths["graphs/email-eu-core/email-Eu-core-department-labels.txt"],
                          delimiter="\t", header=False)
    n = max(int(edges.max()), int(dept[:, 0].max())) + 1
    labels = np.full(n, -1, dtype=np.int64)
    labels[dept[:, 0]] = dept[:, 1]
    return GraphDataset("email-eu-core", edges, n, True, labels)


def load_email_enron(paths: dict) -> GraphDataset:
    """SNAP email-Enron: both directions in the file -> undirected edges once; no labels."""
    edges = read_int_pairs(paths["graphs/email-enron/email-Enron.txt.gz"], delimiter="\t", header=False)
    return GraphDataset("email-enron", undirected_unique(edges), int(edges.max()) + 1, False)


# -- catalogue ---------------------------------------------------------------------

register(DatasetSpec(
    "facebook-page-page", "graph", "MUSAE Facebook page-page network, 4 page types, 4,714 binary features",
    file_table("""
7c50d8f02a75cc0829577814a1fc14535164daa38d79c3612340c9e9cdbd4022  1882610  facebook-page-page/musae_facebook_edges.csv
ea870537646a93642a0008d38aa9bfeff02018070ba97b1f3f469d9622626436  2088766  facebook-page-page/musae_facebook_features.json
e15586b2e0822ee20d355047eb68d6902c7d13cdaffba5171cfd8d07c1d35bce  1200382  facebook-page-page/musae_facebook_target.csv
""", repo="aesaied/datamining", commit="d608ea2d01c2e7f06d48fb55ce6c9311a7966e58"),
    "B. Rozemberczki, C. Allen, R. Sarkar. Multi-scale Attributed Node Embedding. J. Complex Networks 9(2), 2021",
    "none stated in the source repository", "aesaied/datamining@d608ea2d01c2e7f06d48fb55ce6c9311a7966e58",
    dict(nodes=22_470, edges=171_002, self_loops=179, classes=4, features=4_714, feature_nnz=314_583),
    load_facebook))

_PLANETOID = {
    "cora": ("""
138c0713f02c1d7c6510f0767f9c4cd5496c6d5e069e9fa938f41ce021d2ddc0  48450  planetoid/converted/cora_edges.csv
e6b838102f89b7555a7a0eb01d31c7b2873fd1ffe16a1f0033ec21a262e6e79f  81526  planetoid/converted/cora_features.npz
5331fd0586e871c02534c3ef8181efbc9cdf4e311ac14d24fac4573784c0f5db  17857  planetoid/converted/cora_labels.csv
12b62ae80f26b9bdf978cc997d390e5dea17b64c0802008ee6a0c389311ee17e  9274  planetoid/converted/cora_split.json
""", """
9419ba2f26f5c35243db64aba110e0f35a04851609e0dc5433450676ca6b8543  257305  planetoid/raw/ind.cora.allx
2b998f5cc7fedc86e7f97ca2498f47a1ffc1462c29e2d578b23bf3f62b6e7d71  47959  planetoid/raw/ind.cora.ally
58f13302f39dde8852dad6fe6d15b89b077b6d7f837626bce671ef80344b383d  59847  planetoid/raw/ind.cora.graph
297ce89af2b51a6a194181c7dbe1796c6a1cf9cd9349a88383b1b1e227867875  5000  planetoid/raw/ind.cora.test.index
b9afbaa4a400df991f6f02ef677e1e44da55ffc04801fd02f9e673987829226a  148025  planetoid/raw/ind.cora.tx
41f5ac76596a1699cc33f53084a2419e92961c42bb75f36fc38e616d348532ad  28135  planetoid/raw/ind.cora.ty
23cfa55d91c6f624233f5eb7b6e3f141f1bd2b2ae39608a63cf5d084bb27baab  22119  planetoid/raw/ind.cora.x
94465c14eb53e04ca262198dcbb2521ee8af60fb3f3d546cd6ca24a511b0e7d1  4054  planetoid/raw/ind.cora.y
""", dict(nodes=2_708, edges=5_278, classes=7, class_counts=(351, 217, 418, 818, 426, 298, 180),
          features=1_433, feature_nnz=49_216, split=(140, 500, 1_000))),
    "citeseer": ("""
947f4fada444d4572b6c43ff94c5db288a9f26a433b2d921b706d6e7d601e76c  42427  planetoid/converted/citeseer_edges.csv
bdcf766d7f4c534c7d3ac8ab6166d5c949afd9b838d216af9ceab6cb7ec3db60  183530  planetoid/converted/citeseer_features.npz
00905b55c9a20ccd77b0339620f61745205072a74f4cb678cf717de444a1c46b  22205  planetoid/converted/citeseer_labels.csv
15c9fb4f30d24ed4f81c6c45bd9f968fe9e08e8d3b5b3c6ceb8fc3df341ef160  9174  planetoid/converted/citeseer_split.json
""", """
2ac30345d95c9ec933a817ee0bdd6a5f077f8c184a20e696910192d534414668  595021  planetoid/raw/ind.citeseer.allx
f704b2d986dde6c2669934de1f3ae5696a6cf9455c0f6b2646a2d135ea0a1c95  55623  planetoid/raw/ind.citeseer.ally
d79a4ef9d3e7169aee8946145f6b7306e35bc79bffad26346cfb94e10e9912a7  61987  planetoid/raw/ind.citeseer.graph
2af990671580b6b2df5d158d1038f8292e30c9cd821b5453f399659b25b723d4  5000  planetoid/raw/ind.citeseer.test.index
539a8906a2da97628d212f2fdd668c109a8b3f0d36574b59e5d3fd5b5303da21  260321  planetoid/raw/ind.citeseer.tx
55e5bd1ba1e733a04598753ad1a8d57957f4b8f89e74519f41f4f4938767e4ce  24135  planetoid/raw/ind.citeseer.ty
d20de19150741e555de0ed037195630fc194114ebc7fd72ced62810148aa22f6  31087  planetoid/raw/ind.citeseer.x
8ba87e515d8e3ee3cf52f6d2c5b86aa73f11ecad825a808455209ec26cd54924  3014  planetoid/raw/ind.citeseer.y
""", dict(nodes=3_327, edges=4_552, classes=6, class_counts=(249, 590, 668, 701, 596, 508), unlabelled=15,
          features=3_703, feature_nnz=105_165, split=(120, 500, 1_000))),
    "pubmed": ("""
c194a1b990e064315be963d100a2be1f49b1ab419db038e5044566873ff648ee  481457  planetoid/converted/pubmed_edges.csv
3ed28850ece349043081530d4ffeaba8470dc7cb9ac1c3aa6886bbc3474f3b10  146637  planetoid/converted/pubmed_labels.csv
8715de5b86b25622a86afce35c3d2f07d090a92ca9dd66d3279c4ab66eb018d3  9874  planetoid/converted/pubmed_split.json
""", "", dict(nodes=19_717, edges=44_324, classes=3, class_counts=(4_103, 7_739, 7_875), split=(60, 500, 1_000))),
}
_PLANETOID_NOTE = ("CSV/npz converted from the Planetoid pickles by the dataset staging (Kipf & Welling node "
                   "order; see the README)")
_PUBMED_NOTE = ("; fetch cannot rebuild it: PubMed's raw pickles were not staged (ind.pubmed.allx is in no "
                "snapshot found), so no sha256 pins them")


def _planetoid_recipes(name: str, raw: dict):
    """converted/<name>_<kind>.* <- the named convert.planetoid_<kind> over the eight raw files
    (downloaded to planetoid/raw/, read with safe_pickle's numpy/scipy allowlist)."""
    sources = tuple(Source(fs.url, fs.sha256, fs.size)
                    for fs in (raw[f"planetoid/raw/ind.{name}.{part}"] for part in PLANETOID_PARTS))
    return lambda rel: recipe("planetoid-" + rel.rsplit("_", 1)[1].split(".")[0], *sources)


for _name, (_converted, _raw, _counts) in _PLANETOID.items():
    # the original pickles: downloadable, not required by the loader (it reads converted/)
    _raw_files = file_table(_raw, repo="kimiyoung/planetoid", commit="af6abf468a772cc055bec88c52e4d6f51b7c37e3",
                            remote_path=lambda rel: "data/" + rel.rsplit("/", 1)[1], optional=True) if _raw else {}
    _files = file_table(_converted, note=_PLANETOID_NOTE + ("" if _raw else _PUBMED_NOTE),
                        recipes=_planetoid_recipes(_name, _raw_files) if _raw else None)
    _files.update(_raw_files)
    register(DatasetSpec(
        _name, "graph", f"{_name} citation graph with the public Planetoid split"
        + ("" if _raw else " (no node features: ind.pubmed.allx is not available)"), _files,
        "Z. Yang, W. Cohen, R. Salakhutdinov. Revisiting Semi-Supervised Learning with Graph Embeddings. "
        "ICML 2016; P. Sen et al. Collective Classification in Network Data. AI Magazine 2008",
        "MIT (kimiyoung/planetoid)", "kimiyoung/planetoid@af6abf468a772cc055bec88c52e4d6f51b7c37e3",
        _counts, partial(load_planetoid, name=_name)))

_KC_COMMIT = "cb46a91df8dcbeb2570debcf6a9d0c518107a2de"
_KARATECLUB = {
    "lastfm-asia": ("lastfm_asia", "lastfm", """
4a6f555d2ccbbbaf1aa4f46b10b0e612aa515730a513d3e1ac951e1e4dcd733c  270443  graphs/karateclub/lastfm_asia/edges.csv
91f19215f6eca8321feec038bd32900cf13fd4f7e041a9976cf202807c72ac16  56482  graphs/karateclub/lastfm_asia/target.csv
""", dict(nodes=7_624, edges=27_806, classes=18)),
    "deezer-europe": ("deezer_europe", "deezer", """
78c3d3fc62d12ccd2a637e0151283d9ced1b4c9400dc6c0e0b0f71fcbe314091  1036672  graphs/karateclub/deezer_europe/edges.csv
9d5c5736e1d55361e9caa5ae4f96ea5f40c3a70a8cfaad332defac9d84c6b2c6  215148  graphs/karateclub/deezer_europe/target.csv
""", dict(nodes=28_281, edges=92_752, classes=2, class_counts=(15_743, 12_538))),
    "twitch-engb": ("twitch_engb", "twitch", """
90ab33e0426913171302dee0bdac35322596f07bee7431aeabaca648bdda7245  342164  graphs/karateclub/twitch_engb/edges.csv
904426f583b2636b2a4343606dea35e44bd06cf1baa3c4aa46b7c8cec86f2820  1986466  graphs/karateclub/twitch_engb/features.csv
635c3aedd9865b48baa27aae4f5bc54b913100aee026589ec3a7bb4dcfcc8b44  48782  graphs/karateclub/twitch_engb/target.csv
""", dict(nodes=7_126, edges=35_324, classes=2, class_counts=(3_238, 3_888), feature_rows=148_218)),
    "wikipedia-crocodile": ("wikipedia_crocodile", "wikipedia", """
d73dcbbdace474b0f6c5ac55425d281a0ab2967411c4e0d5437bfa5fa75e88ba  1873095  graphs/karateclub/wikipedia_crocodile/edges.csv
19d61f7d5093b5bd1f3a0cb61fa6375a78f5d675a6f0e59bc38cd8350a00a958  81948  graphs/karateclub/wikipedia_crocodile/target.csv
""", dict(nodes=11_631, edges=170_918, edge_rows=180_020, classes=2, class_counts=(8_316, 3_315))),
}
_KC_CITATION = ("B. Rozemberczki, C. Allen, R. Sarkar. Multi-scale Attributed Node Embedding. J. Complex "
                "Networks 2021; B. Rozemberczki, R. Sarkar. Characteristic Functions on Graphs. CIKM 2020; "
                "B. Rozemberczki, O. Kiss, R. Sarkar. Karate Club. CIKM 2020")
for _name, (_folder, _src, _table, _counts) in _KARATECLUB.items():
    register(DatasetSpec(
        _name, "graph", f"Karate Club '{_src}' social graph with node targets", file_table(
            _table, repo="benedekrozemberczki/karateclub", commit=_KC_COMMIT,
            remote_path=lambda rel, s=_src: f"dataset/node_level/{s}/" + rel.rsplit("/", 1)[1]),
        _KC_CITATION, "GPL-3.0 (karateclub repository)", f"benedekrozemberczki/karateclub@{_KC_COMMIT}",
        _counts, partial(load_karateclub, name=_name, folder=_folder)))

register(DatasetSpec(
    "reddit10k", "graph", "Reddit threads: 10,000 graphs for binary graph classification",
    file_table("""
7639a22cdbbee2b45c1009eac3ef855be6c0a68d2bd3ece6ac8e13a48ff1f112  2371386  graphs/karateclub/reddit10k/graphs.json
97bbd30f7daf30ceb8a42a953c2de1ffe95c17c74bf40df985c8059db6a77fe2  68900  graphs/karateclub/reddit10k/target.csv
""", repo="benedekrozemberczki/karateclub", commit=_KC_COMMIT,
        remote_path=lambda rel: "dataset/graph_level/reddit10k/" + rel.rsplit("/", 1)[1]),
    _KC_CITATION, "GPL-3.0 (karateclub repository)", f"benedekrozemberczki/karateclub@{_KC_COMMIT}",
    dict(graphs=10_000, class_counts=(4_843, 5_157)), load_reddit10k))

register(DatasetSpec(
    "blogcatalog", "graph", "BlogCatalog social graph with 39 multi-label groups",
    file_table("""
d4f4fb89ce1ccd4b7e2a183386c000773cc9362cc61f1be5b246a6d9c259da8f  1255783  graphs/blogcatalog/blogcatalog.mat
""", repo="phanein/deepwalk", commit="6e6dff245e4692e9bea47e9017c1034e51afbf29",
        remote_path=lambda rel: "example_graphs/blogcatalog.mat"),
    "L. Tang, H. Liu. Relational Learning via Latent Social Dimensions. KDD 2009",
    "GPL-3.0 (deepwalk repository)", "phanein/deepwalk@6e6dff245e4692e9bea47e9017c1034e51afbf29",
    dict(nodes=10_312, edges=333_983, labels=39, node_label_pairs=14_476), load_blogcatalog))

register(DatasetSpec(
    "email-eu-core", "graph", "SNAP email-Eu-core directed email graph with department labels",
    file_table("""
8724324273873bba3b4ba79444d5113bf8122cb76a51d5396b50f80c29b63f35  8544  graphs/email-eu-core/email-Eu-core-department-labels.txt
275afe50e65b7cb3caadaa9e465e89e9b495b0e7b5a75058b29d70708cd73540  243837  graphs/email-eu-core/email-Eu-core.txt
""", repo="paragk-10/Social-Network-Analysis", commit="ebbdf2303818b991035e2182cddd83a31fd2925b"),
    "H. Yin, A. R. Benson, J. Leskovec, D. F. Gleich. Local Higher-order Graph Clustering. KDD 2017",
    "none stated", "paragk-10/Social-Network-Analysis@ebbdf2303818b991035e2182cddd83a31fd2925b",
    dict(nodes=1_005, edges=25_571, self_loops=642, classes=42), load_email_eu_core))

register(DatasetSpec(
    "email-enron", "graph", "SNAP email-Enron communication graph (undirected, no labels)",
    file_table("""
e4611471ed181699b36e2aafc313e077fb25d16ed67ec5a81591eb8d8b40a5bc  1054970  graphs/email-enron/email-Enron.txt.gz
""", repo="jongwook/graphdb-benchmarks", commit="68f79fe30d1bffb32998a19864a1b2ff66c0d117",
        remote_path=lambda rel: "data/email-Enron.txt.gz"),
    "J. Leskovec, K. Lang, A. Dasgupta, M. Mahoney. Internet Mathematics 2009; B. Klimt, Y. Yang. CEAS 2004",
    "Apache-2.0 (repository code)", "jongwook/graphdb-benchmarks@68f79fe30d1bffb32998a19864a1b2ff66c0d117",
    dict(nodes=36_692, edges=183_831, edge_rows=367_662), load_email_enron))
