"""Loaders return typed objects with the counts verified in shared/datasets/README.md."""

import time

import numpy as np
import pytest
import scipy.sparse as sp

from sketchrec.data import registry
from sketchrec.data.benchmark import SessionBenchmark
from sketchrec.data.interactions import Interactions
from sketchrec.data.loaders.graphs import GraphDataset
from sketchrec.data.loaders.images import ImageDataset
from sketchrec.data.loaders.text import TextDataset
from sketchrec.data.sessions import expand_prefixes


def counts(name):
    return registry.get_spec(name).counts


def each_staged(*names):
    """Parameters for a test run once per dataset, each skipped on its own when not staged."""
    return [pytest.param(name, marks=pytest.mark.needs_dataset(name)) for name in names]


# -- session benchmarks ---------------------------------------------------------------

@pytest.mark.parametrize("name", each_staged("diginetica", "nowplaying", "yoochoose1-64", "retailrocket"))
def test_session_benchmark_counts(name):
    b = registry.load(name)
    c = counts(name)
    assert isinstance(b, SessionBenchmark)
    assert len(b.train) == c["train_sessions"] and b.train.nnz == c["train_clicks"]
    assert b.train.nnz - len(b.train) == c["train_prefixes"]  # SR-GNN's training pairs
    assert len(b.test_targets) == len(b.test_prefixes) == c["test_pairs"]
    assert len(b.test_sessions) == c["test_sessions"] and b.test_sessions.nnz == c["test_clicks"]
    assert b.n_items == len(b.item_ids) == c["items"]
    # the external ids survive: the first training session is the source's first line
    first = b.item_ids.to_external(b.train.row(0))
    assert first == {"diginetica": [1, 2], "nowplaying": [1, 2], "retailrocket": [1, 2, 1, 1],
                     "yoochoose1-64": [37151, 37149, 37149, 37146]}[name]


@pytest.mark.needs_dataset("diginetica")
def test_test_pairs_equal_expanded_test_sessions():
    b = registry.load("diginetica")
    assert b.meta["test_pairs_from"].startswith("expanded test_sessions")
    # first source pair: "21553 20071 8762 21566 6381 -> 21566"
    assert b.item_ids.to_external(b.test_prefixes.row(0)) == [21553, 20071, 8762, 21566, 6381]
    assert b.item_ids.to_external([b.test_targets[0]]) == [21566]


@pytest.mark.needs_dataset("yoochoose1-64")
def test_yoochoose_keeps_test_only_items():
    b = registry.load("yoochoose1-64")
    assert int((b.train.item_counts() > 0).sum()) == counts("yoochoose1-64")["train_items"] == 17_376
    assert b.meta["n_test_items_unseen_in_train"] == 369
    assert b.meta["n_test_targets_unseen_in_train"] > 0


@pytest.mark.needs_dataset("retailrocket")
def test_retailrocket_pairs_come_from_the_file():
    b = registry.load("retailrocket")
    assert b.meta["min_prefix"] == 2 and b.test_prefixes.lengths.min() == 2
    assert b.test_prefixes.row_ids[0] == 1718489 and len(b.meta["test_pair_times"]) == 15_132
    # the file's pairs are exactly the length >= 2 expansion of its test sessions
    prefixes, targets = expand_prefixes(b.test_sessions, min_prefix=2)
    assert np.array_equal(targets, b.test_targets) and np.array_equal(prefixes.items, b.test_prefixes.items)


@pytest.mark.needs_dataset("diginetica")
def test_diginetica_loads_fast():
    registry.verify("diginetica")  # warm the checksum cache
    start = time.perf_counter()
    registry.load("diginetica")
    assert time.perf_counter() - start < 3.0


def test_srgnn_benchmark_loader_has_one_name_and_the_old_one_warns():
    """The registry's file loader is `load_srgnn_benchmark(paths, ...)`; `load_session_benchmark`
    is `pipeline.load_session_benchmark(name)` only (the old loader name warns for a release)."""
    from sketchrec.data.loaders import sessions
    assert registry.get_spec("diginetica").loader.func is sessions.load_srgnn_benchmark
    with pytest.warns(DeprecationWarning, match=r"load_session_benchmark\(\) is deprecated: use load_srgnn_benchmark"):
        with pytest.raises(KeyError):
            sessions.load_session_benchmark({}, name="x", folder="x")


# -- session samples -------------------------------------------------------------------

@pytest.mark.needs_dataset("diginetica-sample")
def test_diginetica_sample():
    v = registry.load("diginetica-sample")
    c = counts("diginetica-sample")
    assert isinstance(v, Interactions)
    assert (len(v), v.n_users, v.n_items) == (c["rows"], c["sessions"], c["items"])
    s = v.to_sessions()
    assert int((s.lengths >= 2).sum()) == 2_053
    assert np.all(np.diff(s.timestamps)[np.diff(s.row_of_click()) == 0] >= 0)  # time order in sessions
    cat = v.items.column("category_id").to_numpy()
    assert v.items.num_rows == v.n_items and (cat >= 0).all()  # every sample item has a category
    assert v.items.column("item_id").to_pylist() == v.item_ids.keys.to_pylist()
    p = v.meta["purchases"]
    assert (len(p), p.n_users, p.n_items) == (c["purchases"], c["purchase_sessions"], c["purchase_items"])
    assert v.meta["categories"].num_rows == c["categories_rows"]


@pytest.mark.needs_dataset("yoochoose-100k")
def test_yoochoose_100k_both_splits():
    c = counts("yoochoose-100k")
    for split, (train, test) in {"test": ("train_full", "test"), "valid": ("train_tr", "train_valid")}.items():
        b = registry.load("yoochoose-100k", split=split)
        assert (b.train.nnz, len(b.train)) == c[train][:2]
        assert (b.test_sessions.nnz, len(b.test_sessions)) == c[test][:2]
        assert int((b.train.item_counts() > 0).sum()) == c[train][2]


@pytest.mark.needs_dataset("otto-sample", "trivago-sample")
def test_otto_and_trivago():
    o = registry.load("otto-sample")
    assert (len(o), o.n_users, o.n_items) == (862, 20, 510)
    events = dict(zip(o.event_ids.keys.to_pylist(), np.bincount(o.event).tolist()))
    assert events == {"clicks": 800, "carts": 52, "orders": 10}
    t = registry.load("trivago-sample")
    assert (len(t), t.n_users) == (100_003, 7_612)
    assert registry.load("trivago-sample", by="user_id").n_users == 6_593


# -- ratings and sequences ------------------------------------------------------------

@pytest.mark.needs_dataset("movielens-100k")
def test_movielens_100k():
    m = registry.load("movielens-100k")
    assert (len(m), m.n_users, m.n_items) == (100_000, 943, 1_682)
    assert m.weight.min() == 1 and m.weight.max() == 5 and m.timestamp is not None
    assert m.items.column("item_id").to_pylist() == m.item_ids.keys.to_pylist()
    toy = m.item_ids.lookup([1]).internal[0]
    assert m.items.column("title")[toy].as_py() == "Toy Story (1995)"
    assert m.items.column("genres")[toy].as_py() == ["Animation", "Children's", "Comedy"]
    assert m.meta["genre_matrix"].shape == (1_682, 19) and m.meta["users"].num_rows == 943


@pytest.mark.needs_dataset("movielens-latest-small")
def test_movielens_latest_small():
    m = registry.load("movielens-latest-small")
    assert (len(m), m.n_users, m.n_items) == (100_836, 610, 9_724)
    assert sorted(np.unique(m.weight).tolist()) == [x / 2 for x in range(1, 11)]
    assert m.meta["movies"].num_rows == 9_742 and m.meta["tags"].num_rows == 3_683
    assert m.items.column("title").null_count == 0


@pytest.mark.needs_dataset("ml-100k-kg")
def test_ml100k_kg():
    kg = registry.load("ml-100k-kg")
    assert (kg.n_triples, len(kg.relation_ids), len(kg.entity_ids), kg.item_entity.num_rows) == \
        (91_631, 24, 34_628, 1_598)


@pytest.mark.parametrize("name", each_staged("beauty", "toys"))
def test_sequential_counts(name):
    d = registry.load(name)
    c = counts(name)
    assert (d.n_users, d.n_items, d.histories.nnz) == (c["users"], c["items"], c["interactions"])
    assert d.histories.lengths.min() == c["min_length"] == 5


# -- graphs ---------------------------------------------------------------------------

def _check_graph(g, name):
    c = counts(name)
    assert isinstance(g, GraphDataset)
    assert g.n_nodes == c["nodes"] and g.n_edges == c["edges"]
    assert g.edges.dtype == np.int64 and g.edges.shape == (c["edges"], 2) and g.edges.max() < g.n_nodes
    if "classes" in c:
        assert g.n_classes == c["classes"]


@pytest.mark.needs_dataset("facebook-page-page")
def test_facebook():
    g = registry.load("facebook-page-page")
    _check_graph(g, "facebook-page-page")
    assert int((g.edges[:, 0] == g.edges[:, 1]).sum()) == 179
    assert dict(zip(g.label_names, np.bincount(g.labels).tolist())) == \
        {"government": 6_880, "company": 6_495, "politician": 5_768, "tvshow": 3_327}
    assert g.features.shape == (22_470, 4_714) and g.features.nnz == 314_583


@pytest.mark.needs_dataset("cora")
def test_cora():
    g = registry.load("cora")
    _check_graph(g, "cora")
    assert tuple(np.bincount(g.labels)) == counts("cora")["class_counts"]
    assert g.features.shape == (2_708, 1_433) and g.features.nnz == 49_216
    assert tuple(len(g.split[k]) for k in ("train", "val", "test")) == (140, 500, 1_000)
    a = g.adjacency()
    assert a.nnz == 2 * 5_278 and (a != a.T).nnz == 0  # PyG's 10,556 directed edges


@pytest.mark.needs_dataset("blogcatalog")
def test_blogcatalog_multilabel():
    g = registry.load("blogcatalog")
    _check_graph(g, "blogcatalog")
    assert sp.issparse(g.labels) and g.labels.shape == (10_312, 39) and g.labels.nnz == 14_476


@pytest.mark.needs_dataset("wikipedia-crocodile")
def test_karateclub_dedupes_both_way_edges():
    g = registry.load("wikipedia-crocodile")
    _check_graph(g, "wikipedia-crocodile")
    assert np.all(g.edges[:, 0] <= g.edges[:, 1])


@pytest.mark.needs_dataset("email-eu-core", "email-enron")
def test_email_graphs():
    eu = registry.load("email-eu-core")
    _check_graph(eu, "email-eu-core")
    assert eu.directed and int((eu.edges[:, 0] == eu.edges[:, 1]).sum()) == 642
    enron = registry.load("email-enron")
    _check_graph(enron, "email-enron")
    assert enron.labels is None


# -- text -----------------------------------------------------------------------------

@pytest.mark.needs_dataset("sst2", "ag-news")
def test_sst2_dev_and_ag_news():
    dev = registry.load("sst2", split="dev")
    assert isinstance(dev, TextDataset) and len(dev) == 872 and np.bincount(dev.labels).tolist() == [428, 444]
    assert dev.texts[0] == "one long string of cliches ."
    ag = registry.load("ag-news")
    assert len(ag) == 7_600 and np.bincount(ag.labels).tolist() == [1_900] * 4
    assert ag.label_names[ag.labels[0]] == "Business" and "\\" not in "".join(ag.texts)


@pytest.mark.needs_dataset("wildnlp-resources", "wildnlp-samples")
def test_wildnlp():
    r = registry.load("wildnlp-resources")
    c = counts("wildnlp-resources")
    assert {k: len(v) for k, v in r.items()} == c
    s = registry.load("wildnlp-samples")
    assert sum(len(p["qas"]) for a in s["squad_v1"]["data"] for p in a["paragraphs"]) == 1_057
    assert len(s["snli"]) == 3 and len(s["imdb"]) == 6 and s["conll2003"][0][0] == ("EU", "NNP", "I-NP", "I-ORG")


@pytest.mark.needs_dataset("fashion-catalog")
def test_fashion_catalog():
    t = registry.load("fashion-catalog")
    assert t.num_rows == 44_446 and t.column("id").to_pylist()[0] == 15970
    assert t.column("productDisplayName")[0].as_py() == "Turtle Check Men Navy Blue Shirt"


# -- images ---------------------------------------------------------------------------

@pytest.mark.needs_dataset("mnist-test", "orl-faces", "sklearn-digits")
def test_mnist_orl_digits():
    m = registry.load("mnist-test")
    assert isinstance(m, ImageDataset) and m.images.shape == (10_000, 28, 28) and m.images.dtype == np.uint8
    assert tuple(np.bincount(m.labels)) == counts("mnist-test")["class_counts"]
    orl = registry.load("orl-faces")
    assert orl.images.shape == (400, 112, 92) and np.bincount(orl.labels).tolist() == [10] * 40
    assert len({im.tobytes() for im in orl.images}) == 400
    d = registry.load("sklearn-digits")
    assert d.images.shape == (1_797, 8, 8) and d.images.max() == 16
    assert tuple(np.bincount(d.labels)) == counts("sklearn-digits")["class_counts"]


@pytest.mark.needs_dataset("coil20", "yaleb")
def test_instance_set_coil20():
    c = registry.load("coil20")
    assert c.images.shape == (1_440, 32, 32) and np.bincount(c.labels).tolist() == [72] * 20
    y = registry.load("yaleb")
    assert y.images.shape == (2_414, 32, 32) and len(y.label_names) == 38


@pytest.mark.needs_dataset("fashion-images")
def test_fashion_images_lazy_from_tar():
    f = registry.load("fashion-images")
    assert len(f) == 9_583
    data = f.read_bytes(12639, check=True)
    assert data[:3] == b"\xff\xd8\xff"  # JPEG
    image = f.open_image(18813)
    if not isinstance(image, bytes):  # Pillow installed
        assert image.size == (224, 224) and f.image_array(18813).shape == (224, 224, 3)
    with pytest.raises(KeyError):
        f.read_bytes(1)
