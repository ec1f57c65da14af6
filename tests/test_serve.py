"""The HTTP service, through a real uvicorn server on loopback and an HTTP client (raw sockets
where a well-behaved client cannot send what a hostile one does: issue 28)."""

import asyncio
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


def make_bundle(path):
    """A small fitted EMDE over 30 items 'sku0'..'sku29' (sessions walk the ids upwards), with item
    vectors (sku1 is sku0's twin) and MiniLM vectors of six kinds of product title."""
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
    save_bundle(path, model, ids, metrics={"HR@20": 0.9}, extras={"item_vectors": vectors, "text_vectors": text})
    return path


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory):
    return make_bundle(tmp_path_factory.mktemp("bundle") / "b")


LIMITS = {"max_k": 50, "max_sessions": 100, "max_body_bytes": 64_000, "max_input_items": 500, "max_results": 1_000,
          "max_unknown_echo": 5, "body_timeout_s": 1.0}
KEY = "s3cret"


@pytest.fixture(scope="module")
def url(bundle_dir):
    from sketchrec.serve import create_app
    return start(create_app(bundle_dir, limits=LIMITS))


@pytest.fixture(scope="module")
def keyed(bundle_dir):
    from sketchrec.serve import create_app
    return start(create_app(bundle_dir, api_key=KEY, limits=LIMITS))


def raw(url: str, head: str, chunks=(), read_after: float = 0.0) -> tuple[int, bytes, float]:
    """Send a request by hand (headers, then body chunks as given); (status, body, seconds to the answer)."""
    host, port = url.removeprefix("http://").split(":")
    t0 = time.perf_counter()
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(head.replace("\n", "\r\n").encode() + b"\r\n")
        try:
            for chunk in chunks:
                s.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass                                                   # the server answered and closed: fine
        time.sleep(read_after)
        data = b""
        while b"\r\n\r\n" not in data or len(data) < data.index(b"\r\n\r\n") + 4 + _length(data):
            part = s.recv(65536)
            if not part:
                break
            data += part
    status = int(data.split(b" ", 2)[1])
    return status, data.split(b"\r\n\r\n", 1)[1], time.perf_counter() - t0


def _length(data: bytes) -> int:
    for line in data.split(b"\r\n\r\n")[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


def is_error_shape(reply) -> bool:
    """FastAPI's HTTPValidationError: detail, a list of {loc, msg, type}."""
    detail = reply.json()["detail"]
    return isinstance(detail, list) and all({"loc", "msg", "type"} <= set(d) and isinstance(d["loc"], list)
                                            for d in detail)


def test_health_and_openapi(url):
    h = httpx.get(f"{url}/health").json()
    assert h["status"] == "ok" and h["items"] == 30 and all(h["endpoints"].values())
    paths = httpx.get(f"{url}/openapi.json").json()["paths"]
    assert {"/recommend", "/similar", "/search", "/profile", "/explain", "/health", "/metrics"} <= set(paths)
    for path in ("/recommend", "/similar", "/search", "/profile", "/explain"):
        documented = set(paths[path]["post"]["responses"])
        assert {"200", "408", "413", "422", "503", "504"} <= documented and "400" not in documented


def test_rows_scored_against_the_catalogue_are_capped_in_the_schema(bundle_dir):
    from sketchrec.serve import create_app
    app = create_app(bundle_dir, limits={"max_scored": 300})                  # 30 items: 10 rows per request
    batch = app.openapi()["components"]["schemas"]["RecommendBatch"]["properties"]["sessions"]
    assert batch["maxItems"] == 10 and batch["minItems"] == 1
    url = start(app)
    assert httpx.post(f"{url}/recommend", json={"sessions": [["sku1"]] * 10}).status_code == 200
    assert httpx.post(f"{url}/recommend", json={"sessions": [["sku1"]] * 11}).status_code == 422


def test_recommend_single_and_batch_with_unknown_items(url):
    r = httpx.post(f"{url}/recommend", json={"items": ["sku3", "sku4", "nope"], "k": 5})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["items"][0] == "sku5" and len(body["items"]) == 5 and body["unknown_items"] == ["nope"]
    assert body["unknown_count"] == 1
    r = httpx.post(f"{url}/recommend", json={"sessions": [["sku1"], ["sku20", "sku21"], ["zzz"]], "k": 3.0})
    results = r.json()["results"]
    assert [x["items"][0] for x in results[:2]] == ["sku2", "sku22"] and results[2]["unknown_items"] == ["zzz"]
    every = httpx.post(f"{url}/recommend", json={"items": ["sku1", "sku2"], "k": 50, "exclude_seen": True}).json()
    assert len(every["items"]) == 28 and None not in every["scores"]          # k past the items: all there are


def test_limits_and_bad_requests(url):
    bad = [{"items": ["sku1"], "k": 51}, {"items": ["sku1"], "k": 0}, {"sessions": [["sku1"]] * 101}, {},
           {"items": ["sku1"], "sessions": [["sku1"]]}, {"items": ["sku1"], "kk": 3}, {"items": [True]},
           {"items": ["sku1"], "k": "5"}, {"items": ["sku1"], "k": 2.5}, {"items": [2 ** 53]}, {"sessions": []},
           {"items": ["x" * 257]}]
    for body in bad:
        r = httpx.post(f"{url}/recommend", json=body)
        assert r.status_code == 422 and is_error_shape(r), (body, r.status_code, r.text)
    for text in (b"not json", b'{"items": ["sku1"], "k": NaN}', b'{"items": ["sku1"], "k": Infinity}',
                 b'{"items": ["sku1"], "k": -Infinity}', b'{"items": [1e999]}', b'{"items": ["\xff"]}',
                 b'{"items": [123456789012345678901234567890]}'):
        r = httpx.post(f"{url}/recommend", content=text, headers={"content-type": "application/json"})
        assert r.status_code == 422 and is_error_shape(r), (text, r.status_code, r.text)
    r = httpx.post(f"{url}/recommend", json={"items": ["q" * 5000]})
    assert r.status_code == 422 and len(r.content) < 1000                      # no echo of the input


def test_work_limits_answer_413_naming_the_limit(url):
    r = httpx.post(f"{url}/recommend", json={"sessions": [["sku1"]] * 60, "k": 20})     # 1,200 results
    assert r.status_code == 413 and is_error_shape(r) and "1,000" in r.json()["detail"][0]["msg"]
    assert httpx.post(f"{url}/recommend", json={"sessions": [["sku1"]] * 60, "k": 16}).status_code == 200
    r = httpx.post(f"{url}/profile", json={"sessions": [["sku1"] * 100] * 6})             # 600 input ids
    assert r.status_code == 413 and "500" in r.json()["detail"][0]["msg"]
    assert httpx.post(f"{url}/similar", json={"items": ["sku1"] * 40, "k": 30}).status_code == 413
    assert httpx.post(f"{url}/similar", json={"items": ["sku1"] * 40, "k": 25}).status_code == 200


def test_unknown_echo_is_bounded(url):
    r = httpx.post(f"{url}/recommend", json={"sessions": [[f"{'u' * 250}{i}" for i in range(20)], ["sku1", "x"]]})
    a, b = r.json()["results"]
    assert a["unknown_count"] == 20 and len(a["unknown_items"]) == 5
    assert b["unknown_count"] == 1 and b["unknown_items"] == [] and len(b["items"]) == 20   # echo budget spent


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
    r = httpx.post(f"{url}/explain", json={"items": ["sku3"], "item": "nope"})
    assert r.status_code == 404 and is_error_shape(r) and r.json()["detail"][0]["loc"] == ["body", "item"]


def test_errors_have_the_schema_shape(url):
    r = httpx.get(f"{url}/no/such/thing")
    assert r.status_code == 404 and is_error_shape(r) and "/recommend" in r.json()["detail"][0]["msg"]
    r = httpx.get(f"{url}/recommend")
    assert r.status_code == 405 and is_error_shape(r) and r.headers["allow"] == "POST"


def test_body_limit_from_content_length_and_while_streaming(url):
    status, body, seconds = raw(url, "POST /recommend HTTP/1.1\nHost: x\nContent-Type: application/json\n"
                                     "Content-Length: 200000000\n")      # no body sent at all
    assert status == 413 and b"64,000" in body and seconds < 2
    chunk = b"2000\r\n" + b" " * 0x2000 + b"\r\n"                            # chunked, no Content-Length
    status, body, seconds = raw(url, "POST /recommend HTTP/1.1\nHost: x\nContent-Type: application/json\n"
                                     "Transfer-Encoding: chunked\n", [chunk] * 20)
    assert status == 413 and b"body_too_large" in body and seconds < 5
    status, body, seconds = raw(url, "POST /recommend HTTP/1.1\nHost: x\nContent-Type: application/json\n"
                                     "Content-Length: 100\n", [b'{"items": '], read_after=0.0)
    assert status == 408 and 0.9 < seconds < 5                               # a body that never comes


def test_api_key_is_checked_before_the_body(keyed):
    status, body, seconds = raw(keyed, "POST /recommend HTTP/1.1\nHost: x\nContent-Type: application/json\n"
                                       "Content-Length: 200000000\n")
    assert status == 401 and seconds < 2
    status, *_ = raw(keyed, "POST /recommend HTTP/1.1\nHost: x\nX-API-Key: wrong\nContent-Length: 200000000\n")
    assert status == 403


def test_api_key(keyed, bundle_dir):
    from sketchrec.serve import create_app
    assert httpx.post(f"{keyed}/recommend", json={"items": ["sku1"]}).status_code == 401
    assert httpx.post(f"{keyed}/recommend", json={"items": ["sku1"]}, headers={"X-API-Key": "nope"}).status_code == 403
    assert httpx.post(f"{keyed}/recommend", json={"items": ["sku1"]}, headers={"X-API-Key": KEY}).status_code == 200
    r = httpx.post(f"{keyed}/recommend", json={"items": ["sku1"]}, headers={"X-API-Key": "clé".encode()})
    assert r.status_code == 403 and is_error_shape(r)                         # non-ASCII: 403, not 500
    assert httpx.get(f"{keyed}/no/such/thing").status_code == 401             # no probing without the key
    for open_path in ("/health", "/openapi.json", "/docs"):
        assert httpx.get(f"{keyed}{open_path}").status_code == 200
    unicode = start(create_app(bundle_dir, api_key="clé-ü"))
    ok = httpx.post(f"{unicode}/recommend", json={"items": ["sku1"]}, headers={"X-API-Key": "clé-ü".encode()})
    assert ok.status_code == 200
    assert httpx.post(f"{unicode}/recommend", json={"items": ["sku1"]},
                      headers={"X-API-Key": "cl\xe9".encode("latin-1")}).status_code == 403


def test_metrics_are_labelled_by_route_not_by_path(url):
    httpx.post(f"{url}/recommend", json={"items": ["sku1"]})
    before = httpx.get(f"{url}/metrics").text
    with httpx.Client(base_url=url) as client:
        for i in range(300):
            client.get(f"/random/{i}/{'x' * (i % 50)}")
    text = httpx.get(f"{url}/metrics").text
    assert 'endpoint="/recommend"' in text and 'endpoint="unmatched",status="404"' in text
    assert "random" not in text and len(text) < len(before) + 3000
    assert "sketchrec_request_seconds_bucket" in text


def test_docs_are_served_from_this_server(url):
    from sketchrec.serve import _docs_assets
    html = httpx.get(f"{url}/docs").text
    assert "cdn" not in html.lower() and "https://" not in html.replace("https://fastapi", "")
    if _docs_assets() is None:
        pytest.skip("fastapi-offline is not installed: /docs points at /openapi.json only")
    assert "/docs-assets/swagger-ui-bundle.js" in html
    js = httpx.get(f"{url}/docs-assets/swagger-ui-bundle.js")
    assert js.status_code == 200 and len(js.content) > 500_000
    redoc = httpx.get(f"{url}/redoc").text
    assert "/docs-assets/redoc.standalone.js" in redoc and "fonts.googleapis" not in redoc


def test_gate_bounds_inflight_queue_and_time():
    from fastapi import HTTPException

    from sketchrec.serve import LIMITS, _Gate
    gate = _Gate({**LIMITS, "max_heavy_inflight": 2, "queue_timeout_s": 0.2, "request_timeout_s": 0.5})
    assert gate.enter() and gate.enter() and not gate.enter()
    gate.leave(), gate.leave()

    async def scenario():
        slow = asyncio.ensure_future(gate.run(lambda: time.sleep(0.8) or "late"))
        await asyncio.sleep(0.05)
        with pytest.raises(HTTPException) as busy:                # the one slot is taken: 503 after 0.2 s
            await gate.run(lambda: "never")
        with pytest.raises(HTTPException) as late:                # the slow one: 504 after 0.5 s
            await slow
        await asyncio.sleep(0.5)                                   # its work ends; the slot comes back
        return busy.value, late.value, await gate.run(lambda: "free")
    busy, late, free = asyncio.run(scenario())
    assert (busy.status_code, late.status_code, free) == (503, 504, "free")
    assert busy.detail[0]["type"] == "busy" and busy.headers["retry-after"] == "1"


def test_heap_trims_are_rate_limited_while_busy_and_done_when_idle(monkeypatch):
    import sketchrec.serve as serve_module
    trims = []
    monkeypatch.setattr(serve_module, "_release_memory", lambda: trims.append(time.monotonic()))
    gate = serve_module._Gate(serve_module.LIMITS)
    assert gate.enter()
    for _ in range(5):                                   # a burst of large requests: one trim, the rest put off
        gate.done_large(True)
    gate.done_large(False)
    assert len(trims) == 1 and gate.trim_pending
    gate.leave()                                         # idle: the put-off trim runs on the model thread
    gate.executor.submit(lambda: None).result()
    assert len(trims) == 2 and not gate.trim_pending
    assert gate.enter()
    gate.done_large(False)                               # small requests never trim
    gate.leave()
    gate.executor.submit(lambda: None).result()
    assert len(trims) == 2


def test_cli_serve_takes_the_key_from_a_file_or_the_environment(bundle_dir, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import sketchrec.serve
    from sketchrec.cli import app
    calls = []
    monkeypatch.setattr(sketchrec.serve, "serve", lambda bundle, **kw: calls.append(kw))
    runner = CliRunner()
    key_file = tmp_path / "key"
    key_file.write_text("from-file\n")
    r = runner.invoke(app, ["serve", str(bundle_dir), "--api-key-file", str(key_file), "--limit", "max_k=7"])
    assert r.exit_code == 0 and calls[-1]["api_key"] == "from-file" and calls[-1]["limits"] == {"max_k": 7}
    assert "warning" not in r.output
    r = runner.invoke(app, ["serve", str(bundle_dir)], env={"SKETCHREC_API_KEY": "from-env"})
    assert r.exit_code == 0 and calls[-1]["api_key"] == "from-env" and "warning" not in r.output
    r = runner.invoke(app, ["serve", str(bundle_dir), "--api-key", "on-the-command-line"])
    assert r.exit_code == 0 and calls[-1]["api_key"] == "on-the-command-line" and "visible" in r.output
    r = runner.invoke(app, ["serve", str(bundle_dir), "--api-key", "a", "--api-key-file", str(key_file)])
    assert r.exit_code == 2 and "once" in r.output
    r = runner.invoke(app, ["serve", str(tmp_path / "nothing")])
    assert r.exit_code == 2 and r.output.startswith("error:") and len(r.output.strip().splitlines()) <= 2
    assert len(calls) == 3


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


def test_workers_share_one_mapped_model_and_one_metrics_view(bundle_dir, tmp_path):
    """`sketchrec serve --workers 2`: two worker processes behind one port, each mapping the same
    weights file (copy-on-write, so the pages are shared), answering the same scores as the
    in-process app, and /metrics counting every worker's requests."""
    import os
    import subprocess
    import sys

    import psutil
    port = free_port()
    env = {**os.environ, "SKETCHREC_API_KEY": KEY}
    server = subprocess.Popen([sys.executable, "-m", "sketchrec.cli", "serve", str(bundle_dir), "--port", str(port),
                               "--workers", "2", "--threads", "1"], env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.PIPE, text=True)
    url, keyed = f"http://127.0.0.1:{port}", {"X-API-Key": KEY}
    try:
        for _ in range(600):
            assert server.poll() is None, server.stderr.read()
            try:
                if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
        body = {"sessions": [["sku3", "sku4"], ["sku10"]], "k": 5}
        answers = [httpx.post(f"{url}/recommend", json=body, headers=keyed, timeout=30).json() for _ in range(12)]
        assert all(a == answers[0] for a in answers) and answers[0]["results"][0]["items"]
        workers = [p for p in psutil.Process(server.pid).children(recursive=True)
                   if any("weights.safetensors" in m.path for m in p.memory_maps())]
        assert len(workers) == 2
        for p in workers:
            mapped = [m for m in p.memory_maps(grouped=False) if m.path.endswith("weights.safetensors")]
            assert mapped and all(m.perms.startswith("rw-p") for m in mapped)      # private copy-on-write map
        text = httpx.get(f"{url}/metrics", headers=keyed).text
        line = next(x for x in text.splitlines() if x.startswith('sketchrec_requests_total{endpoint="/recommend"'))
        assert float(line.split()[-1]) == 12.0
    finally:
        server.terminate()
        server.wait(timeout=30)
    with pytest.raises(ValueError, match="workers"):
        from sketchrec.serve import serve
        serve(bundle_dir, workers=0)
