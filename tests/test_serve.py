"""The HTTP service, through a real uvicorn server on loopback and an HTTP client."""

import socket
import threading
import time

import httpx
import numpy as np
import pytest

from sketchrec.bundle import save_bundle
from sketchrec.data.idmap import IdMap
from sketchrec.data.sessions import Sessions

TITLES = ["red running shoes", "blue denim jeans", "black leather wallet", "white cotton t-shirt",
          "green rain jacket", "silver analog watch"] * 5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(app) -> str:
    import uvicorn
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=server.run, daemon=True).start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.02)
    return f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory):
    from sketchrec.embedders.text import TextEncoder
    from sketchrec.models.emde import EMDE
    n = 30
    starts = np.random.default_rng(0).integers(0, n, 300)
    train = Sessions.from_lists(((starts[:, None] + np.arange(5)) % n).tolist(), n_items=n)
    model = EMDE(inputs=("all:cleora:1", "last:cleora:0"), outputs=("cleora:1",), n_sketches=4, n_bits=5,
                 hidden=32, epochs=3, batch_size=64, progress=False, threads=1).fit(train)
    ids = IdMap([f"sku{i}" for i in range(n)], "item")
    vectors = np.random.default_rng(1).normal(size=(n, 8)).astype(np.float32)
    vectors[1] = vectors[0] + 0.01                              # sku1 is sku0's twin
    text = TextEncoder(progress=False).encode([f"{t} {i}" for i, t in enumerate(TITLES)])
    path = tmp_path_factory.mktemp("bundle") / "b"
    save_bundle(path, model, ids, metrics={"HR@20": 0.9}, extras={"item_vectors": vectors, "text_vectors": text})
    return path


@pytest.fixture(scope="module")
def url(bundle_dir):
    from sketchrec.serve import create_app
    return start(create_app(bundle_dir, limits={"max_k": 50, "max_sessions": 100}))


def test_health_and_openapi(url):
    h = httpx.get(f"{url}/health").json()
    assert h["status"] == "ok" and h["items"] == 30 and all(h["endpoints"].values())
    assert "/recommend" in httpx.get(f"{url}/openapi.json").json()["paths"]


def test_recommend_single_and_batch_with_unknown_items(url):
    r = httpx.post(f"{url}/recommend", json={"items": ["sku3", "sku4", "nope"], "k": 5})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["items"][0] == "sku5" and len(body["items"]) == 5 and body["unknown_items"] == ["nope"]
    r = httpx.post(f"{url}/recommend", json={"sessions": [["sku1"], ["sku20", "sku21"], ["zzz"]], "k": 3})
    results = r.json()["results"]
    assert [x["items"][0] for x in results[:2]] == ["sku2", "sku22"] and results[2]["unknown_items"] == ["zzz"]


def test_limits_and_bad_requests(url):
    assert httpx.post(f"{url}/recommend", json={"items": ["sku1"], "k": 51}).status_code == 422
    assert httpx.post(f"{url}/recommend", json={"items": ["sku1"], "k": 0}).status_code == 422
    assert httpx.post(f"{url}/recommend", json={"sessions": [["sku1"]] * 101}).status_code == 422
    assert httpx.post(f"{url}/recommend", json={}).status_code == 422
    assert httpx.post(f"{url}/recommend", content=b"not json",
                      headers={"content-type": "application/json"}).status_code == 422


def test_similar_search_profile(url):
    sim = httpx.post(f"{url}/similar", json={"items": ["sku0", "missing"], "k": 3}).json()["results"]
    assert sim[0]["items"][0] == "sku1" and "sku0" not in sim[0]["items"] and sim[1]["unknown"]
    found = httpx.post(f"{url}/search", json={"texts": ["leather wallet"], "k": 5}).json()["results"][0]
    assert all(int(i[3:]) % 6 == 2 for i in found["items"])        # every hit is a 'black leather wallet'
    prof = httpx.post(f"{url}/profile", json={"sessions": [["sku1", "sku2"], []]}).json()
    assert prof["dim"] > 0 and len(prof["results"][0]["indices"]) > 0 and prof["results"][1]["indices"] == []


def test_explain(url):
    e = httpx.post(f"{url}/explain", json={"items": ["sku3", "sku4"], "item": "sku5", "top_buckets": 2}).json()
    assert set(e["modalities"]) == {"all:cleora:1", "last:cleora:0"} and len(e["buckets"]) == 2
    assert httpx.post(f"{url}/explain", json={"items": ["sku3"], "item": "nope"}).status_code == 422


def test_metrics_in_prometheus_format(url):
    httpx.post(f"{url}/recommend", json={"items": ["sku1"]})
    text = httpx.get(f"{url}/metrics").text
    assert "sketchrec_requests_total" in text and 'endpoint="/recommend"' in text
    assert "sketchrec_request_seconds_bucket" in text


def test_api_key(bundle_dir):
    from sketchrec.serve import create_app
    url = start(create_app(bundle_dir, api_key="s3cret"))
    assert httpx.post(f"{url}/recommend", json={"items": ["sku1"]}).status_code == 401
    assert httpx.post(f"{url}/recommend", json={"items": ["sku1"]}, headers={"X-API-Key": "nope"}).status_code == 403
    assert httpx.post(f"{url}/recommend", json={"items": ["sku1"]},
                      headers={"X-API-Key": "s3cret"}).status_code == 200
    assert httpx.get(f"{url}/health").status_code == 200          # health stays open for probes


def test_demo_tail_bundles_and_answers_over_http(tmp_path):
    from sketchrec.data.benchmark import SessionBenchmark
    from sketchrec.models.baselines import SequentialRules
    from sketchrec.pipeline import bundle_and_query
    starts = np.random.default_rng(0).integers(0, 30, 300)
    train = Sessions.from_lists(((starts[:, None] + np.arange(5)) % 30).tolist(), n_items=30)
    prefixes = Sessions.from_lists([[3, 4], [10]], n_items=30)
    bench = SessionBenchmark("toy", train, prefixes, np.array([5, 11]), IdMap([f"i{i}" for i in range(30)], "item"))
    out = bundle_and_query(bench, SequentialRules().fit(train), {"MRR@20": 1.0}, tmp_path, n_requests=2)
    assert [r["items"][0] for r in out["responses"]] == ["i5", "i11"]
    assert (tmp_path / "bundle" / "CURRENT").exists() and len(out["latency_ms"]) == 2
