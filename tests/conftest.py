"""Where the tests find real data, and how they skip without it.

Tests reach staged datasets only through the registry's data dir (`registry.data_dir()`:
$SKETCHREC_DATA, else the user cache folder), never through a path of their own such as
../shared: `make test` points $SKETCHREC_DATA at ../shared/datasets when it exists, and
.ci/run's second pass points it at an empty folder to prove that a fresh clone with nothing
staged passes. A test that needs datasets says so with
``@pytest.mark.needs_dataset("name", ...)`` (or a module's ``pytestmark``) and is skipped
with one line naming the first missing dataset when they are not all staged. Word lists and
model weights the library ships are not datasets: tests that use them always run.
"""

import functools
from pathlib import Path

import pytest

from sketchrec.data import registry

SHARED: Path = registry.data_dir()


@functools.cache
def staged(name: str) -> bool:
    return registry.info(name, data_dir=SHARED)["complete"]


def pytest_configure(config):
    config.addinivalue_line("markers", "needs_dataset(*names): skip unless these registry datasets are staged "
                                       "under the data dir ($SKETCHREC_DATA)")


def pytest_collection_modifyitems(items):
    for item in items:
        names = [n for mark in item.iter_markers("needs_dataset") for n in mark.args]
        missing = next((n for n in names if not staged(n)), None)
        if missing is not None:
            item.add_marker(pytest.mark.skip(reason=f"dataset {missing!r} not staged under {SHARED}"))


@pytest.fixture
def shared() -> Path:
    """The data dir the staged datasets are read from (pair it with a needs_dataset mark)."""
    return SHARED
