"""sketchrec: recommendations from massive, multimodal behavioural data.

The common case in a few names, each imported on first use (PEP 562), so ``import sketchrec``
stays fast and loads neither torch nor numba::

    import sketchrec
    events = sketchrec.read_interactions("events.parquet", user="user_id", item="item_id")
    vectors = sketchrec.embed(sketchrec.Graph.from_interactions(events), dim=256)
    model = sketchrec.VSKNN(neighbours=100).fit(events.to_sessions())
    bench = sketchrec.registry.load("diginetica")

Data: `Sessions`, `read_interactions`, `registry` (the dataset registry). Graphs: `Graph`,
`Cleora`, `embed`. Models: `EMDE`, `SRGNN`, `TAGNN` and the baselines `Popularity`,
`ItemKNN`, `SessionKNN`, `VSKNN`, `SequentialRules`, `EASE`. The estimator protocol:
`Estimator`, `clone`. `topk` is the top-k module (`sketchrec.topk.topk(scores, k)`).
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

#: public name -> (module, attribute in it; None: the module itself)
_PUBLIC: dict[str, tuple[str, str | None]] = {
    "Sessions": ("sketchrec.data.sessions", "Sessions"),
    "read_interactions": ("sketchrec.data.readers", "read_interactions"),
    "registry": ("sketchrec.data.registry", None),
    "Graph": ("sketchrec.graph.build", "Graph"),
    "Cleora": ("sketchrec.graph.cleora", "Cleora"),
    "embed": ("sketchrec.graph.cleora", "embed"),
    "EMDE": ("sketchrec.models", "EMDE"),
    "SRGNN": ("sketchrec.models", "SRGNN"),
    "TAGNN": ("sketchrec.models", "TAGNN"),
    "Popularity": ("sketchrec.models.baselines", "Popularity"),
    "ItemKNN": ("sketchrec.models.baselines", "ItemKNN"),
    "SessionKNN": ("sketchrec.models.baselines", "SessionKNN"),
    "VSKNN": ("sketchrec.models.baselines", "VSKNN"),
    "SequentialRules": ("sketchrec.models.baselines", "SequentialRules"),
    "EASE": ("sketchrec.models.baselines", "EASE"),
    "Estimator": ("sketchrec.base", "Estimator"),
    "clone": ("sketchrec.base", "clone"),
    "topk": ("sketchrec.topk", None),
}

__all__ = list(_PUBLIC)


def __getattr__(name: str):
    if name not in _PUBLIC:
        raise AttributeError(f"module 'sketchrec' has no attribute {name!r}")
    module, attribute = _PUBLIC[name]
    value = importlib.import_module(module)
    if attribute is not None:
        value = getattr(value, attribute)
    globals()[name] = value            # once resolved, an ordinary attribute
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
