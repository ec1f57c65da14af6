"""Every estimator, one protocol: fit on tiny synthetic data, save, load, the same outputs; `clone`
gives an unfitted copy with equal parameters; `repr` rebuilds the parameters.

Estimators that another part of the redesign is still bringing under `Estimator` (issue 29)
are skipped until they derive from it, and picked up from then on.
"""

from __future__ import annotations

import dataclasses
import inspect

import numpy as np
import pytest

from sketchrec.base import Estimator, clone
from sketchrec.data.sessions import Sessions, expand_prefixes
from sketchrec.graph import Cleora, Graph
from sketchrec.models.blend import Blend
from sketchrec.models.baselines import (EASE, IALS, VSKNN, ItemKNN, Popularity, RP3beta, SLIM, SequentialRules,
                                        SessionKNN)
from sketchrec.sketch.dlsh import DLSHCoder

N_ITEMS = 30


def rule_sessions(n: int = 300, seed: int = 0) -> Sessions:
    """Sessions walking i -> i+1 (mod 30), five clicks each."""
    starts = np.random.default_rng(seed).integers(0, N_ITEMS, n)
    return Sessions.from_lists(((starts[:, None] + np.arange(5)[None, :]) % N_ITEMS).tolist(), n_items=N_ITEMS)


QUERIES = Sessions.from_lists([[4, 5, 6], [28, 29], [12], [0, 3, 3, 7]], n_items=N_ITEMS)
VECTORS = np.random.default_rng(1).standard_normal((60, 6)).astype(np.float32)


def known(cls, **params) -> dict:
    """The given settings `cls.__init__` takes (a renamed setting falls back to its default)."""
    names = inspect.signature(cls.__init__).parameters
    return {k: v for k, v in params.items() if k in names}


def needs_estimator(cls) -> None:
    if not (isinstance(cls, type) and issubclass(cls, Estimator)):
        pytest.skip(f"{cls.__name__} does not derive from Estimator yet")


@dataclasses.dataclass
class Case:
    estimator: Estimator                      # unfitted
    fit: callable                             # estimator -> the fitted estimator
    output: callable                          # fitted estimator -> what it computes


def recommender(model) -> Case:
    return Case(model, lambda m: m.fit(rule_sessions()), lambda m: m.score(QUERIES))


# -- the cases: each builds its estimator and data only when run --------------------------

def cleora() -> Case:
    rng = np.random.default_rng(0)
    graph = Graph.from_edges(rng.integers(0, 40, 200), rng.integers(0, 40, 200), rng.random(200) + 0.1,
                             n_nodes=40)
    return Case(Cleora(dim=8, iterations=3, keep_history=True, progress=False), lambda m: m.fit(graph),
                lambda m: (m.embeddings_.vectors, m.embeddings_.ids.external_array(), m.embed_new([[1, 2], [3]])))


def cleora_columns() -> Case:
    """Several node types with string ids and a transient one: ids must come back exactly."""
    table = {"user": ["u1", "u2", "u1", "u3"], "items": ["a b", "b c", "c", "a c d"]}
    graph = Graph.from_columns(table, ["transient::user", "complex::reflexive::items"])
    return Case(Cleora(dim=4, iterations=2, progress=False), lambda m: m.fit(graph),
                lambda m: (m.embeddings_.vectors, m.embeddings_.ids.external_array(), m.graph_.adjacency.toarray()))


def dlsh() -> Case:
    return Case(DLSHCoder(n_sketches=3, n_bits=4, seed=2), lambda m: m.fit(VECTORS), lambda m: m.encode(VECTORS))


def emde() -> Case:
    from sketchrec.models import EMDE
    return recommender(EMDE(**known(EMDE, inputs=("all:cleora:0", "last:cleora:0"), outputs=("cleora:0",),
                                    n_sketches=3, n_bits=4, cleora_dim=16, hidden=16, epochs=1, batch_size=64,
                                    progress=False, threads=1)))


def srgnn(name: str):
    def case() -> Case:
        from sketchrec import models
        cls = getattr(models, name)
        return recommender(cls(**known(cls, hidden=8, epochs=1, batch_size=100, progress=False, threads=1)))
    return case


def clustered_sessions() -> Case:
    from sketchrec.models import SRGNN, ClusteredSessions
    train = rule_sessions()
    validation = expand_prefixes(rule_sessions(40, seed=3))
    try:                                        # validation as an object (issue 29), where it is one
        from sketchrec.eval.validation import NextItemValidation
        validation = NextItemValidation(*validation)
    except ImportError:
        pass

    def fit(m):
        base = SRGNN(**known(SRGNN, hidden=8, epochs=1, batch_size=100, progress=False, threads=1)).fit(train)
        return m.fit(train, base=base, validation=validation)
    return Case(ClusteredSessions(**known(ClusteredSessions, n_clusters=2, fine_tune_epochs=1, min_cluster_prefixes=50,
                                          progress=False)), fit, lambda m: m.score(QUERIES))


def centroid_index() -> Case:
    from sketchrec.retrieval.index import CentroidIndex
    needs_estimator(CentroidIndex)
    groups = np.arange(len(VECTORS)) % 7
    return Case(CentroidIndex(), lambda m: m.fit(VECTORS, groups), lambda m: m.search(VECTORS[:5], k=3))


def adjacency_augmentation() -> Case:
    from sketchrec.augment import AdjacencyAugmentation
    needs_estimator(AdjacencyAugmentation)
    fit_takes = inspect.signature(AdjacencyAugmentation.fit).parameters
    data = {"vectors": VECTORS[:N_ITEMS]}
    model = AdjacencyAugmentation(**known(AdjacencyAugmentation, kind="kmeans", n_clusters=3, seed=0))
    return Case(model, lambda m: m.fit(**{k: v for k, v in data.items() if k in fit_takes}),
                lambda m: m.state_arrays())


def retrieval_trainer() -> Case:
    from sketchrec.retrieval.ctl import LossWeights, MLPHead, RetrievalTrainer
    needs_estimator(RetrievalTrainer)
    labels = np.arange(len(VECTORS)) % 6
    return Case(RetrievalTrainer(MLPHead(6, 8, 4), LossWeights(), epochs=1, p=3, m=4, threads=1, progress=False),
                lambda m: m.fit(VECTORS, labels), lambda m: m.embed(VECTORS))


def cross_modal_trainer() -> Case:
    from sketchrec.retrieval.crossmodal import CrossModalTrainer
    needs_estimator(CrossModalTrainer)
    regions, tokens = VECTORS.reshape(20, 3, 6), np.ascontiguousarray(VECTORS[::-1]).reshape(20, 3, 6)
    mask = np.ones((20, 3), bool)
    return Case(CrossModalTrainer("temde", dim=8, n=2, k=3, d=4, epochs=1, batch_size=8, threads=1, progress=False),
                lambda m: m.fit(regions, tokens, mask), lambda m: m.embed(regions, tokens, mask))


def region_pca() -> Case:
    from sketchrec.retrieval.catalogue import RegionPCA
    needs_estimator(RegionPCA)
    regions = VECTORS.reshape(20, 3, 6)
    return Case(RegionPCA(dim=2), lambda m: m.fit(regions), lambda m: m.transform(regions))


def catalogue_search() -> Case:
    from sketchrec.retrieval.catalogue import CatalogueSearch
    needs_estimator(CatalogueSearch)
    regions, tokens = VECTORS.reshape(20, 3, 6), np.ascontiguousarray(VECTORS[::-1]).reshape(20, 3, 6)
    mask, ids = np.ones((20, 3), bool), np.arange(100, 120)
    queries = np.random.default_rng(2).standard_normal((2, 3, 6)).astype(np.float32)

    def output(m):                 # the model's query vectors and the index's answer (no text encoder needed)
        import torch
        q = m.model_.encode_texts(torch.as_tensor(queries), torch.ones(2, 3, dtype=torch.bool)).detach().numpy()
        return m.index_.search(q, k=3)
    return Case(CatalogueSearch("mean", region_pca=0, trainer_params={"dim": 8, "epochs": 1, "batch_size": 4,
                                                                      "threads": 1, "progress": False}), lambda m: m.fit(regions, tokens, mask, ids, [f"t{i}" for i in ids]),
                output)


CASES = {
    "Popularity": lambda: recommender(Popularity()),
    "SequentialRules": lambda: recommender(SequentialRules(steps=3, prune=5)),
    "ItemKNN": lambda: recommender(ItemKNN(neighbours=5, history="all")),
    "SessionKNN": lambda: recommender(SessionKNN(neighbours=5, sample_size=50)),
    "VSKNN": lambda: recommender(VSKNN(neighbours=5, decay="div", scoring="session-rec")),
    "EASE": lambda: recommender(EASE(lam=10.0)),
    "EASE-float32": lambda: recommender(EASE(lam=10.0, dtype="float32")),
    "RP3beta": lambda: recommender(RP3beta(alpha=0.8, beta=0.3, neighbours=5)),
    "SLIM": lambda: recommender(SLIM(l1=0.1, l2=2.0, neighbours=5)),
    "IALS": lambda: (pytest.importorskip("implicit"), recommender(IALS(factors=4, iterations=3, threads=1)))[1],
    "Blend": lambda: recommender(Blend((Popularity(), SequentialRules(steps=2), EASE(lam=5.0)), (0.2, 0.5, 0.3))),
    "Cleora": cleora,
    "Cleora-columns": cleora_columns,
    "DLSHCoder": dlsh,
    "EMDE": emde,
    "SRGNN": srgnn("SRGNN"),
    "TAGNN": srgnn("TAGNN"),
    "ClusteredSessions": clustered_sessions,
    "CentroidIndex": centroid_index,
    "AdjacencyAugmentation": adjacency_augmentation,
    "RetrievalTrainer": retrieval_trainer,
    "CrossModalTrainer": cross_modal_trainer,
    "RegionPCA": region_pca,
    "CatalogueSearch": catalogue_search,
}


def flat(value) -> list:
    """The arrays in an output (arrays, tuples and named tuples, dataclasses, dicts)."""
    if isinstance(value, dict):
        return [a for k in sorted(value) for a in flat(value[k])]
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return flat(dataclasses.astuple(value))
    if isinstance(value, (tuple, list)):
        return [a for v in value for a in flat(v)]
    return [np.asarray(value)]


def assert_same(a, b) -> None:
    a, b = flat(a), flat(b)
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.shape == y.shape and x.dtype == y.dtype
        if x.dtype.kind == "f":
            np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7)
        else:
            np.testing.assert_array_equal(x, y)


def same_value(a, b) -> bool:
    if isinstance(a, Estimator):                      # an estimator parameter (a blend's models): same settings
        return type(a) is type(b) and same_params(a.get_params(), b.get_params())
    if isinstance(a, (list, tuple)) and a and isinstance(a[0], Estimator):
        return len(a) == len(b) and all(same_value(x, y) for x, y in zip(a, b))
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b)
    if hasattr(a, "state_dict"):                      # a torch module: same class, same weights
        sa, sb = a.state_dict(), b.state_dict()
        return type(a) is type(b) and sa.keys() == sb.keys() and all((sa[k] == sb[k]).all() for k in sa)
    return a == b


def same_params(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)


def test_clone_copies_a_module_parameter():
    """A clone trains its own copy of a torch module, never the original's weights."""
    torch = pytest.importorskip("torch")
    from sketchrec.retrieval.ctl import MLPHead, RetrievalTrainer
    trainer = RetrievalTrainer(MLPHead(4, 8, 2))
    copy = clone(trainer)
    assert copy.backbone is not trainer.backbone and same_value(copy.backbone, trainer.backbone)
    with torch.no_grad():
        next(copy.backbone.parameters()).add_(1.0)
    assert not same_value(copy.backbone, trainer.backbone)


@pytest.fixture(params=list(CASES), ids=list(CASES))
def case(request) -> Case:
    return CASES[request.param]()


def test_save_load_gives_the_same_outputs(case, tmp_path):
    cls = type(case.estimator)
    if cls.__name__ == "ClusteredSessions" and not cls._state and "_save_extra" not in vars(cls):
        pytest.xfail("ClusteredSessions saves no learned state yet (issue 29: being fixed)")
    fitted = case.fit(case.estimator)
    assert fitted is case.estimator and fitted.is_fitted()
    path = tmp_path / "saved"
    fitted.save(path)
    if path.is_file():                                       # Estimator.save's one .npz
        with np.load(path, allow_pickle=False) as z:         # nothing needs pickle to read
            assert all(z[name].dtype != object for name in z.files)
        assert type(Estimator.load(path)) is cls
    loaded = cls.load(path)                                  # (or the class's own layout, e.g. a folder)
    assert type(loaded) is cls
    assert loaded.saved_params() == fitted.saved_params()
    assert_same(case.output(loaded), case.output(fitted))


def test_clone_is_unfitted_with_equal_params(case):
    fitted = case.fit(case.estimator)
    copy = clone(fitted)
    assert type(copy) is type(fitted) and copy is not fitted
    assert not copy.is_fitted()
    assert same_params(copy.get_params(), fitted.get_params())


def test_repr_rebuilds_the_params(case):
    cls = type(case.estimator)
    if any(hasattr(v, "state_dict") for v in case.estimator.get_params().values()):
        pytest.skip("a torch module parameter has no repr that rebuilds it")
    text = repr(case.estimator)
    assert text.startswith(cls.__name__ + "(")
    from sketchrec.base import _REGISTRY                    # estimator parameters repr as their classes
    rebuilt = eval(text, {**_REGISTRY, cls.__name__: cls})  # noqa: S307 - our own repr
    assert same_params(rebuilt.get_params(), case.estimator.get_params())


def test_every_estimator_class_here_is_covered():
    """A new estimator class shows up here (every package that defines estimators is imported)."""
    import importlib
    for package in ("augment", "graph", "models", "retrieval", "sketch"):
        importlib.import_module(f"sketchrec.{package}")
    from sketchrec.base import _REGISTRY
    names = {name for name, cls in _REGISTRY.items() if cls.__module__.startswith("sketchrec.")}
    missing = names - {n.split("-")[0] for n in CASES}
    assert not missing, f"add a round-trip case for {sorted(missing)}"
