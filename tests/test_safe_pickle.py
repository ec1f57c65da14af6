"""safe_pickle: downloaded pickles load plain data only; any global is refused before it runs."""

import collections
import os
import pickle

import numpy as np
import pytest
import scipy.sparse as sp

from sketchrec.data import safe_pickle
from sketchrec.data.safe_pickle import UnsafePickleError


class _Payload:
    """Unpickling this runs `os.system(command)` under plain pickle.load."""

    def __init__(self, command: str):
        self.command = command

    def __reduce__(self):
        return os.system, (self.command,)


PLAIN = [[1, 2, 3], [4], []], ([[5, 6]], [7]), {"a": 1.5, "b": None, "c": True}, "text", -2**70


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
def test_plain_data_loads_at_every_protocol(protocol):
    assert safe_pickle.loads(pickle.dumps(PLAIN, protocol=protocol)) == PLAIN
    if protocol >= 3:  # bytes need a global (_codecs.encode) below protocol 3
        assert safe_pickle.loads(pickle.dumps(b"\x00raw", protocol=protocol)) == b"\x00raw"


@pytest.mark.parametrize("protocol", range(pickle.HIGHEST_PROTOCOL + 1))
@pytest.mark.parametrize("allow", [None, safe_pickle.SCIENTIFIC], ids=["no-globals", "scientific"])
def test_malicious_pickle_is_refused_and_never_runs(tmp_path, protocol, allow):
    marker = tmp_path / "pwned"
    data = pickle.dumps([1, _Payload(f"touch {marker}")], protocol=protocol)
    with pytest.raises(UnsafePickleError, match=r"refused to load global (posix|os|nt)\.system") as err:
        safe_pickle.loads(data, allow=allow)
    assert isinstance(err.value, ValueError) and isinstance(err.value, pickle.UnpicklingError)
    assert not marker.exists()


def test_any_global_is_refused_without_an_allowlist():
    for obj, name in [(collections.OrderedDict(a=1), "collections.OrderedDict"), ({1, 2}, "builtins.set"),
                      (np.arange(3), "numpy")]:
        with pytest.raises(UnsafePickleError, match=f"refused to load global {name}"):
            safe_pickle.loads(pickle.dumps(obj, protocol=3))


def test_scientific_allowlist_reads_arrays_sparse_and_py2_defaultdict():
    arr = np.arange(6, dtype=np.float32).reshape(2, 3)
    assert np.array_equal(safe_pickle.loads(pickle.dumps(arr), allow=safe_pickle.SCIENTIFIC), arr)
    m = sp.csr_matrix(arr)
    back = safe_pickle.loads(pickle.dumps(m), allow=safe_pickle.SCIENTIFIC)
    assert (back != m).nnz == 0
    graph = collections.defaultdict(list, {0: [1, 2], 1: [0]})
    py2 = pickle.dumps(graph, protocol=2, fix_imports=True)  # written as __builtin__.list, as Python 2 did
    assert b"__builtin__" in py2
    assert safe_pickle.loads(py2, allow=safe_pickle.SCIENTIFIC, encoding="latin1") == graph


def test_scientific_allowlist_stays_narrow():
    with pytest.raises(UnsafePickleError, match="object arrays"):
        safe_pickle.loads(pickle.dumps(np.array([1, "a"], dtype=object)), allow=safe_pickle.SCIENTIFIC)
    with pytest.raises(UnsafePickleError, match="only list is allowed"):
        safe_pickle.loads(pickle.dumps(collections.defaultdict(np.ndarray)), allow=safe_pickle.SCIENTIFIC)
