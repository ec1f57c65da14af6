"""The service against its own OpenAPI schema (issue 28): schemathesis, in-process over ASGI.

The run is what `schemathesis run` does from the command line (the engine: examples, coverage,
fuzzing and stateful phases; positive and negative data; every check it has) against an app
with an API key and small limits, and against one open with the default limits, seeded and
bounded in examples so that each takes seconds: a response code the schema does not list, a
body that does not match the documented shape, a schema-valid request refused or a
schema-invalid one accepted, an ignored API key, a 5xx, any of them fails the test with
schemathesis's own description and a curl line to reproduce it.

(The engine, not `@schema.parametrize()`: the schema needs a fitted bundle, and a lazily
loaded schema, `schemathesis.pytest.from_fixture`, does not run under pytest 9.)
"""

import pytest
import schemathesis
from schemathesis.config import SchemathesisConfig
from schemathesis.engine import Status, events, from_schema

from test_serve import make_bundle

KEY = "contract-key"
LIMITS = {"max_k": 50, "max_sessions": 20, "max_items_per_session": 20, "max_texts": 5, "max_text_chars": 200}


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    return make_bundle(tmp_path_factory.mktemp("bundle") / "b")


# 413 answers the limits JSON Schema cannot state (body bytes, input ids, rows x k: see the
# schema's descriptions), so a request the schema allows may get it, and so may one it does not.
CHECKS = {"positive_data_acceptance": {"expected-statuses": ["2xx", "401", "403", "404", "413", "429"]},
          "negative_data_rejection": {"expected-statuses": ["400", "401", "403", "404", "405", "413", "415",
                                                            "422", "429"]}}


def run(app, **config) -> tuple[int, list[str]]:
    """Run schemathesis's engine; (test cases sent, failures as text)."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", app, config=SchemathesisConfig.from_dict(
        {"seed": 28, "headers": {"X-API-Key": KEY}, "generation": {"max-examples": 25, "database": "none"},
         "checks": CHECKS, "cache": {"enabled": False}, "output": {"sanitization": {"enabled": False}},
         **config}))
    cases, failures = 0, []
    for event in from_schema(schema).execute():
        if isinstance(event, (events.ScenarioFinished, events.FuzzScenarioFinished)):
            cases += len(event.recorder.cases)
            for checks in event.recorder.checks.values():
                failures += [f"{event.recorder.label}: {c.failure_info.failure.title}\n"
                             f"{c.failure_info.failure.message}\n{c.failure_info.code_sample}"
                             for c in checks if c.status == Status.FAILURE]
        elif isinstance(event, (events.NonFatalError, events.FatalError)):
            failures.append(f"error: {getattr(event, 'info', None) or event.exception!r}")
    return cases, sorted(set(failures))


@pytest.mark.slow
@pytest.mark.parametrize("keyed", [True, False], ids=["api key, small limits", "open, default limits"])
def test_schemathesis_finds_nothing(bundle, keyed):
    from sketchrec.serve import create_app
    app = create_app(bundle, api_key=KEY, limits=LIMITS) if keyed else create_app(bundle)
    cases, failures = run(app) if keyed else run(app, headers={})
    assert not failures, f"{len(failures)} distinct failures in {cases} cases:\n\n" + "\n\n".join(failures[:10])
    assert cases > 300


@pytest.fixture(scope="module")
def search_bundle(tmp_path_factory):
    """A small catalogue-search bundle: 24 titled products, a mean-pooling model trained one epoch."""
    import numpy as np

    from sketchrec.embedders.text import TextEncoder
    from sketchrec.retrieval.catalogue import CatalogueSearch
    titles = [f"{c} {t}" for c in ("red", "blue", "black", "white") for t in ("shoes", "shirt", "bag", "scarf",
                                                                             "watch", "cap")]
    tokens, mask = TextEncoder(progress=False, threads=1, max_length=8).encode_tokens(titles)
    regions = tokens[:, :, :16] + np.random.default_rng(0).normal(size=(len(titles), tokens.shape[1], 16))
    trainer = {"dim": 8, "epochs": 1, "batch_size": 8, "threads": 1, "progress": False}
    search = CatalogueSearch("mean", region_pca=0, max_length=8, trainer_params=trainer).fit(
        regions.astype(np.float32), tokens, mask, np.arange(len(titles)), titles)
    path = tmp_path_factory.mktemp("search") / "s"
    search.save(path)
    return path


@pytest.mark.slow
def test_schemathesis_finds_nothing_in_a_search_service(search_bundle):
    from sketchrec.serve import create_app
    cases, failures = run(create_app(search_bundle, api_key=KEY, limits=LIMITS))
    assert not failures, f"{len(failures)} distinct failures in {cases} cases:\n\n" + "\n\n".join(failures[:10])
    assert cases > 50
