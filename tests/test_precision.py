"""bf16 follows the CPU: "auto" is bf16 only with native bf16; True / False always win."""

import logging

import numpy as np
import pytest
import torch

from sketchrec import precision
from sketchrec.data.sessions import Sessions
from sketchrec.models import EMDE, SRGNN, TAGNN


@pytest.fixture
def cpu(monkeypatch):
    """Set what torch reports about the CPU: cpu(bf16=True) is a Sapphire Rapids, False an AVX2 EPYC."""
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    monkeypatch.delenv("ATEN_CPU_CAPABILITY", raising=False)
    monkeypatch.setattr(precision, "_logged", set())

    def set_cpu(bf16: bool, amx: bool = False):
        monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: bf16)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx)
    return set_cpu


def test_auto_follows_the_hardware(cpu):
    cpu(bf16=False)
    assert not precision.native_bf16() and precision.use_bf16("auto") is False
    cpu(bf16=True)
    assert precision.native_bf16() and precision.use_bf16("auto") is True
    cpu(bf16=False, amx=True)
    assert precision.use_bf16("auto") is True


@pytest.mark.parametrize("native", [True, False])
def test_explicit_setting_wins(cpu, native):
    cpu(bf16=native)
    assert precision.use_bf16(True) is True
    assert precision.use_bf16(False) is False


def test_bad_setting_is_refused(cpu):
    with pytest.raises(ValueError, match="'auto'"):
        precision.use_bf16("yes")


@pytest.mark.parametrize("env", [("ONEDNN_MAX_CPU_ISA", "AVX2"), ("ONEDNN_MAX_CPU_ISA", "avx512_core"),
                                 ("ATEN_CPU_CAPABILITY", "avx2")])
def test_a_limit_on_the_kernels_turns_native_bf16_off(cpu, monkeypatch, env):
    cpu(bf16=True)
    monkeypatch.setenv(*env)
    assert not precision.native_bf16()
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE_AMX")
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "avx512")
    assert precision.native_bf16()


def test_the_choice_is_logged_once(cpu, caplog):
    cpu(bf16=False)
    with caplog.at_level(logging.INFO, logger="sketchrec.precision"):
        for _ in range(3):
            precision.use_bf16("auto", "EMDE training")
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "EMDE training precision: float32" in lines[0]


def test_cpu_summary_names_the_vector_extensions(monkeypatch):
    monkeypatch.setattr(precision, "cpu_flags", lambda: frozenset({"avx2", "fma", "sse4_2", "vmx"}))
    summary = precision.cpu_summary()
    assert "sse4_2 avx2 fma" in summary and "vmx" not in summary and "torch kernels" in summary


def _sessions(n_items=30, n=200, seed=0):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(2, 6, n)
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    return Sessions(indptr, rng.integers(0, n_items, indptr[-1]), n_items=n_items)


@pytest.mark.parametrize("native", [True, False])
def test_models_default_to_auto(cpu, native, monkeypatch):
    cpu(bf16=native)
    seen = []
    real_autocast = torch.autocast

    def spy(device, dtype=None, enabled=True, **kw):
        seen.append(enabled)
        return real_autocast(device, dtype=dtype, enabled=enabled, **kw)
    monkeypatch.setattr(torch, "autocast", spy)
    train = _sessions()
    emde = EMDE(cleora_dim=16, n_sketches=2, n_bits=3, hidden=16, epochs=1, batch_size=64, progress=False,
                threads=1).fit(train)
    assert emde.bf16 == "auto" and emde.bf16_ is native and seen and set(seen) == {native}
    seen.clear()
    gnn = SRGNN(hidden=8, epochs=1, batch_size=64, progress=False, threads=1).fit(train)
    assert gnn.bf16_ is native and set(seen) == {native}
    tagnn = TAGNN(hidden=8, epochs=1, batch_size=64, progress=False, threads=1).fit(train)
    assert tagnn.bf16_attention_ is native
    forced = EMDE(cleora_dim=16, n_sketches=2, n_bits=3, hidden=16, epochs=1, batch_size=64, progress=False,
                  threads=1, bf16=not native).fit(train)
    assert forced.bf16_ is (not native)
