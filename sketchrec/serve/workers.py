"""Running the service: `serve` (uvicorn, blocking), one process or several worker processes
behind one port (SO_REUSEPORT on Linux), each worker's app built by `worker_app` from
$SKETCHREC_SERVE_WORKER."""

from __future__ import annotations

import json
import os
import socket
import sys
import tempfile
import threading
from pathlib import Path

from sketchrec._optional import require
from sketchrec.bundle import Bundle
from sketchrec.serve.app import create_app

WORKER_ENV = "SKETCHREC_SERVE_WORKER"       # JSON {bundle, limits, threads, int8} for `worker_app`


def _bundle_root(bundle) -> Path:
    """The directory every worker loads `bundle` from (a path, or a loaded bundle's root)."""
    if isinstance(bundle, (str, Path)):
        return Path(bundle)
    version = bundle.path if isinstance(bundle, Bundle) else getattr(bundle, "path_", None)
    if version is None:
        raise ValueError("several workers load the bundle from disk: save it first, or give its path")
    return version.parent


def serve(bundle: Bundle | str | Path, host: str = "127.0.0.1", port: int = 8000, api_key: str | None = None,
          limits: dict | None = None, max_connections: int = 256, workers: int = 1,
          threads: int | None = None, int8: bool = False) -> None:
    """Run the service with uvicorn (blocking). Beyond `max_connections` open connections per
    worker uvicorn itself answers 503.

    workers > 1: that many uvicorn worker processes, each with its own socket on the port
    (SO_REUSEPORT, so the kernel spreads connections over them; elsewhere uvicorn's shared
    socket). Each loads the bundle memory-mapped, so the weights are
    one copy in the page cache for all of them (`sketchrec.bundle.map_safetensors`), and /metrics
    adds up every worker's counts (prometheus_client's multiprocess mode, in a temporary
    directory removed at exit). threads: compute threads per worker (torch and numba; default:
    the cores this process may use, shared out among the workers). int8: see `create_app`.
    bundle: a model bundle or a catalogue-search bundle, loaded or by path (`create_app`)."""
    uvicorn = require("uvicorn", "serving over HTTP")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    threads = threads or max(1, len(os.sched_getaffinity(0)) // workers)
    options = dict(host=host, port=port, log_level="warning", limit_concurrency=max_connections)
    if workers == 1:
        uvicorn.run(create_app(bundle, api_key=api_key, limits=limits, threads=threads, int8=int8), **options)
        return
    root = _bundle_root(bundle)
    with tempfile.TemporaryDirectory(prefix="sketchrec-metrics-") as metrics_dir:
        env = {WORKER_ENV: json.dumps({"bundle": str(root), "limits": limits or {}, "threads": threads,
                                       "int8": int8}),
               "PROMETHEUS_MULTIPROC_DIR": metrics_dir, "NUMBA_NUM_THREADS": str(threads),
               "OMP_NUM_THREADS": str(threads)}
        if api_key is not None:
            env["SKETCHREC_API_KEY"] = api_key            # the workers' environment: not visible in `ps`
        saved = {name: os.environ.get(name) for name in env}
        os.environ.update(env)
        try:
            if hasattr(socket, "SO_REUSEPORT") and sys.platform.startswith("linux"):
                _run_reuseport_workers(workers, options)
            else:
                uvicorn.run("sketchrec.serve:worker_app", factory=True, workers=workers, **options)
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def _run_reuseport_workers(workers: int, options: dict) -> None:
    """`workers` processes, each with its own listening socket on the same port (SO_REUSEPORT), so
    the kernel spreads new connections over the workers by a hash of each connection. (uvicorn's
    own workers share one socket, and the first to wake accepts every pending connection: 8 client
    connections opened together all went to one of two workers in benchmarks/serve_load.py.)
    A worker that exits stops the others and the server exits non-zero, for the process manager
    to restart it; SIGINT / SIGTERM stop every worker gracefully."""
    import multiprocessing
    import signal
    spawn = multiprocessing.get_context("spawn")
    procs = [spawn.Process(target=_reuseport_worker, args=(options,), name=f"sketchrec-worker-{i}")
             for i in range(workers)]
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for p in procs:
            p.start()
        while not stop.is_set() and all(p.is_alive() for p in procs):
            stop.wait(0.5)
    finally:
        for p in procs:
            if p.is_alive():
                p.terminate()                      # SIGTERM: uvicorn finishes what it is answering
        for p in procs:
            p.join(30)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    failed = [p for p in procs if p.exitcode not in (0, -signal.SIGTERM)]
    if not stop.is_set() and failed:
        raise SystemExit(f"worker {failed[0].name} exited with code {failed[0].exitcode}; the server stopped")


def _reuseport_worker(options: dict) -> None:
    uvicorn = require("uvicorn", "serving over HTTP")
    host, port = options["host"], options["port"]
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.listen(2048)
    config = uvicorn.Config("sketchrec.serve:worker_app", factory=True,
                            **{k: v for k, v in options.items() if k not in ("host", "port")})
    uvicorn.Server(config).run(sockets=[sock])


def worker_app():
    """The app of one worker process started by `serve(workers > 1)` (configured by $WORKER_ENV)."""
    config = json.loads(os.environ[WORKER_ENV])
    return create_app(config["bundle"], api_key=os.environ.get("SKETCHREC_API_KEY"), limits=config["limits"],
                      threads=config["threads"], int8=config["int8"])
