"""Text -> product search: training on real MiniLM title tokens, persistence, the `sketchrec search` CLI,
and serving a search bundle over HTTP."""

import itertools
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from sketchrec.bundle import BundleError, save_bundle
from sketchrec.cli import app
from sketchrec.embedders.text import TextEncoder
from sketchrec.models.baselines import Popularity
from sketchrec.retrieval import SearchResult
from sketchrec.retrieval.catalogue import CatalogueSearch, RegionPCA, product_split

COLOURS = ["red", "blue", "green", "black", "white", "yellow", "pink", "grey"]
TYPES = ["running shoes", "cotton shirt", "leather bag", "wool scarf", "denim jeans", "wrist watch",
         "summer dress", "baseball cap", "silk tie", "sports socks"]


@pytest.fixture(scope="module")
def encoder():
    return TextEncoder(progress=False, threads=1, max_length=16)


@pytest.fixture(scope="module")
def catalogue(encoder):
    """80 products titled "<colour> <type>"; their "image regions" are a fixed random mix of the
    title's token embeddings plus noise — a catalogue where text and image agree, by construction."""
    titles = [f"{c} {t}" for c, t in itertools.product(COLOURS, TYPES)]
    tokens, mask = encoder.encode_tokens(titles)
    rng = np.random.default_rng(0)
    mix = rng.normal(size=(384, 48)).astype(np.float32) / 20
    regions = tokens @ mix + 0.05 * rng.normal(size=(len(titles), tokens.shape[1], 48)).astype(np.float32)
    ids = np.arange(1000, 1000 + len(titles))
    return regions.astype(np.float16), tokens, mask, ids, titles


@pytest.fixture(scope="module")
def trained(catalogue):
    regions, tokens, mask, ids, titles = catalogue
    trainer = {"epochs": 40, "batch_size": 16, "lr": 3e-3, "dim": 32, "threads": 1, "progress": False}
    return CatalogueSearch("mean", region_pca=16, max_length=16, trainer_params=trainer).fit(regions, tokens, mask,
                                                                                            ids, titles)


def test_product_split_is_disjoint_and_seeded():
    a = product_split(100, seed=3)
    assert sum(map(len, a)) == 100 and len(np.unique(np.concatenate(a))) == 100
    assert all(np.array_equal(x, y) for x, y in zip(a, product_split(100, seed=3)))


def test_region_pca_matches_a_projection(tmp_path):
    x = np.random.default_rng(0).normal(size=(30, 5, 8)).astype(np.float32)
    pca = RegionPCA(3).fit(x, np.arange(30))
    out = pca.transform(x)
    assert out.shape == (30, 5, 3)
    np.testing.assert_allclose(out, (x - pca.mean_) @ pca.components_.T, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(pca.components_ @ pca.components_.T, np.eye(3), atol=1e-5)
    pca.save(tmp_path / "pca.npz")                                    # an Estimator: saved without pickle
    np.testing.assert_array_equal(RegionPCA.load(tmp_path / "pca.npz").transform(x), out)
    with pytest.warns(DeprecationWarning, match="RegionPCA.fit"):    # the former classmethod, one more release
        old = RegionPCA.fit(x, np.arange(30), 3)
    np.testing.assert_array_equal(old.transform(x), out)
    with pytest.warns(DeprecationWarning, match="mean_"):
        np.testing.assert_array_equal(old.mean, pca.mean_)


def test_search_finds_the_titled_product(trained, encoder):
    queries = ["red running shoes", "black leather bag", "white silk tie", "green wool scarf"]
    hits = trained.search(queries, k=5, encoder=encoder, as_result=True)
    assert isinstance(hits, SearchResult) and hits.rows.shape == hits.scores.shape == (4, 5)
    np.testing.assert_array_equal(hits.groups, trained.ids_[hits.rows])
    found = sum(q in [trained.texts_[r] for r in rows] for q, rows in zip(queries, hits.rows))
    assert found >= 3, hits
    assert (np.diff(hits.scores, axis=1) <= 0).all()
    assert set(trained.metrics_) >= {"test_t2i_R@1", "test_i2t_MRR", "test_rsum"}
    assert trained.metrics_["test_t2i_R@10"] > 0.3          # 16 held-out products: chance is 10/16 only at R@10


def test_former_shapes_still_work_for_one_release(trained, catalogue, encoder):
    with pytest.warns(DeprecationWarning, match="as_result=True"):
        results = trained.search(["red running shoes", "white silk tie"], k=5, encoder=encoder)
    hits = trained.search(["red running shoes", "white silk tie"], k=5, encoder=encoder, as_result=True)
    assert [r["query"] for r in results] == ["red running shoes", "white silk tie"]
    for r, rows, scores in zip(results, hits.rows, hits.scores):
        assert r["ids"] == trained.ids_[rows].tolist() and r["texts"] == [trained.texts_[i] for i in rows]
        assert r["scores"] == np.round(scores, 6).tolist()
    with pytest.warns(DeprecationWarning, match="metrics_"):
        assert trained.metrics == trained.metrics_
    regions, tokens, mask, ids, titles = catalogue
    with pytest.warns(DeprecationWarning, match="CatalogueSearch.train"):
        old = CatalogueSearch.train(regions, tokens, mask, ids, titles, pooling="mean", region_pca=16, epochs=2,
                                    batch_size=16, lr=3e-3, dim=32, threads=1, progress=False, max_length=16)
    new = CatalogueSearch("mean", region_pca=16, max_length=16, trainer_params={
        "epochs": 2, "batch_size": 16, "lr": 3e-3, "dim": 32, "threads": 1, "progress": False}).fit(
        regions, tokens, mask, ids, titles)
    assert old.config_ == new.config_ and old.metrics_ == new.metrics_
    np.testing.assert_array_equal(old.image_vectors_, new.image_vectors_)


def test_save_load_round_trip_and_refusals(trained, encoder, tmp_path):
    trained.save(tmp_path / "s")
    back = CatalogueSearch.load(tmp_path / "s")
    assert back.config_ == json.loads(json.dumps(trained.config_))
    assert back.get_params() == trained.get_params()
    a = trained.search(["blue cotton shirt"], 10, encoder, as_result=True)
    b = back.search(["blue cotton shirt"], 10, encoder, as_result=True)
    np.testing.assert_array_equal(a.groups, b.groups)
    np.testing.assert_allclose(a.scores, b.scores, atol=1e-5)
    # a model bundle is not a search bundle, and the other way round
    model = Popularity()
    model.n_items_, model.counts_ = 5, np.arange(5.0)
    save_bundle(tmp_path / "m", model)
    with pytest.raises(BundleError, match="not a catalogue-search bundle"):
        CatalogueSearch.load(tmp_path / "m")
    from sketchrec.bundle import load_bundle
    with pytest.raises(BundleError, match="not a model bundle"):
        load_bundle(tmp_path / "s")
    # tampering is caught by the checksums
    version = tmp_path / "s" / (tmp_path / "s" / "CURRENT").read_text().strip()
    (version / "catalogue.json").write_text((version / "catalogue.json").read_text().replace("red", "rex"))
    with pytest.raises(BundleError, match="sha256|bytes"):
        CatalogueSearch.load(tmp_path / "s")


def test_search_cli(trained, tmp_path):
    trained.save(tmp_path / "s")
    out = tmp_path / "hits.csv"
    result = CliRunner().invoke(app, ["search", str(tmp_path / "s"), "--text", "yellow baseball cap",
                                      "--text", "pink summer dress", "-k", "3", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "yellow baseball cap" in result.output
    import pyarrow.csv as pacsv
    table = pacsv.read_csv(out)
    assert table.num_rows == 6 and table.column_names == ["query", "rank", "id", "title", "cosine"]
    missing = CliRunner().invoke(app, ["search", str(tmp_path / "nothing"), "--text", "x"])
    assert missing.exit_code == 2 and "no CURRENT file" in missing.output


def test_bad_input_is_refused(catalogue):
    regions, tokens, mask, ids, titles = catalogue
    with pytest.raises(ValueError, match="one row per product"):
        CatalogueSearch().fit(regions[:10], tokens, mask, ids, titles)
    with pytest.raises(TypeError, match="list of strings"):
        CatalogueSearch().search("red shoes")
    with pytest.raises(RuntimeError, match="not fitted"):
        CatalogueSearch().search(["red shoes"])


def test_a_search_bundle_is_served_over_http(trained, encoder, tmp_path):
    """`sketchrec serve` on a search bundle: POST /search answers products (ids, titles, cosines) as
    `CatalogueSearch.search` ranks them; only /search is routed; the limits hold as for model bundles."""
    from fastapi.testclient import TestClient

    from sketchrec.serve import bundle_kind, create_app, load_servable
    trained.save(tmp_path / "s")
    assert bundle_kind(tmp_path / "s") == "catalogue-search" and isinstance(load_servable(tmp_path / "s"),
                                                                             CatalogueSearch)
    client = TestClient(create_app(tmp_path / "s", limits={"max_k": 20, "max_results": 30}))
    health = client.get("/health").json()
    assert health["model"] == "CatalogueSearch" and health["items"] == 80 and health["endpoints"]["search"]
    assert not any(v for name, v in health["endpoints"].items() if name != "search")
    paths = client.get("/openapi.json").json()["paths"]
    assert {"/search", "/health", "/metrics"} <= set(paths) and "/recommend" not in paths
    queries = ["yellow baseball cap", "grey wool scarf"]
    r = client.post("/search", json={"texts": queries, "k": 5})
    assert r.status_code == 200, r.text
    expected = trained.search(queries, 5, encoder, as_result=True)
    for hit, text, rows, scores in zip(r.json()["results"], queries, expected.rows, expected.scores):
        assert hit["text"] == text and hit["items"] == trained.ids_[rows].tolist()
        assert hit["titles"] == [trained.texts_[i] for i in rows]
        assert hit["scores"] == np.round(scores.astype(np.float64), 6).tolist()
    assert client.post("/search", json={"texts": queries * 4, "k": 5}).status_code == 413   # 40 results > 30
    assert client.post("/search", json={"texts": queries, "k": 21}).status_code == 422
    assert client.post("/recommend", json={"items": [1000]}).status_code == 404
    assert 'endpoint="/search"' in client.get("/metrics").text
