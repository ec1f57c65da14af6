"""Text -> product search: training on real MiniLM title tokens, persistence, the `sketchrec search` CLI."""

import itertools
import json

import numpy as np
import pytest
from typer.testing import CliRunner

from sketchrec.bundle import BundleError, save_bundle
from sketchrec.cli import app
from sketchrec.embedders.text import TextEncoder
from sketchrec.models.baselines import Popularity
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
    return CatalogueSearch.train(regions, tokens, mask, ids, titles, pooling="mean", region_pca=16, epochs=40,
                                 batch_size=16, lr=3e-3, dim=32, threads=1, progress=False, max_length=16)


def test_product_split_is_disjoint_and_seeded():
    a = product_split(100, seed=3)
    assert sum(map(len, a)) == 100 and len(np.unique(np.concatenate(a))) == 100
    assert all(np.array_equal(x, y) for x, y in zip(a, product_split(100, seed=3)))


def test_region_pca_matches_a_projection():
    x = np.random.default_rng(0).normal(size=(30, 5, 8)).astype(np.float32)
    pca = RegionPCA.fit(x, np.arange(30), 3)
    out = pca.transform(x)
    assert out.shape == (30, 5, 3)
    np.testing.assert_allclose(out, (x - pca.mean) @ pca.components.T, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(pca.components @ pca.components.T, np.eye(3), atol=1e-5)


def test_search_finds_the_titled_product(trained, encoder):
    queries = ["red running shoes", "black leather bag", "white silk tie", "green wool scarf"]
    results = trained.search(queries, k=5, encoder=encoder)
    assert [r["query"] for r in results] == queries
    hits = sum(q in r["texts"] for q, r in zip(queries, results))
    assert hits >= 3, results
    for r in results:
        assert len(r["ids"]) == 5 and r["scores"] == sorted(r["scores"], reverse=True)
    assert set(trained.metrics) >= {"test_t2i_R@1", "test_i2t_MRR", "test_rsum"}
    assert trained.metrics["test_t2i_R@10"] > 0.3          # 16 held-out products: chance is 10/16 only at R@10


def test_save_load_round_trip_and_refusals(trained, encoder, tmp_path):
    trained.save(tmp_path / "s")
    back = CatalogueSearch.load(tmp_path / "s")
    assert back.config == json.loads(json.dumps(trained.config))
    a, b = trained.search(["blue cotton shirt"], 10, encoder), back.search(["blue cotton shirt"], 10, encoder)
    assert a[0]["ids"] == b[0]["ids"]
    np.testing.assert_allclose(a[0]["scores"], b[0]["scores"], atol=1e-5)
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
        CatalogueSearch.train(regions[:10], tokens, mask, ids, titles)
    with pytest.raises(TypeError, match="list of strings"):
        CatalogueSearch(None, ids, titles, np.zeros((len(ids), 4), np.float32)).search("red shoes")
