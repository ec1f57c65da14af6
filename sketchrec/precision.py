"""Training precision that follows the CPU: bfloat16 only where the hardware computes it.

bf16 autocast halves the bytes every GEMM reads and, on a CPU with native bf16 arithmetic
(AVX-512 BF16 on Cooper Lake / Zen 4 and later, or AMX tiles on Sapphire Rapids), raises
the GEMM rate: EMDE's network step ran 1.6x faster in bf16 on the earlier development
machine (AMX / AVX-512 BF16). Everywhere else, oneDNN and ATen emulate bf16 with conversions
around float32 arithmetic, and a training step becomes many times *slower*: 40-68x for
EMDE's network and 17x for SR-GNN's on an AVX2-only AMD EPYC (docs/benchmarks/train_step_speed.md). Most laptops,
most cloud VMs and every AMD CPU before Zen 4 are AVX2-only, so a fixed bf16 default is
wrong for most users. Every model's bf16 option therefore defaults to "auto":

    >>> from sketchrec.precision import use_bf16, native_bf16
    >>> use_bf16("auto")       # True only with native bf16; True / False always win
    >>> native_bf16()

What counts as native: torch's own CPU feature probes (`torch.cpu._is_avx512_bf16_supported`,
`_is_amx_tile_supported`, the same cpuinfo checks its oneDNN dispatch uses), else the
kernel's CPU flags. Limits a user puts on the kernels are honoured, so an AVX2-only CPU can
be reproduced on a newer one with ``ONEDNN_MAX_CPU_ISA=AVX2 ATEN_CPU_CAPABILITY=avx2``.
The choice is logged once per process.
"""

from __future__ import annotations

import functools
import logging
import os
import platform
import re
from pathlib import Path

log = logging.getLogger(__name__)

__all__ = ["native_bf16", "use_bf16", "cpu_model", "cpu_flags", "cpu_summary", "int8_linear"]

# oneDNN ISA names from the lowest that computes bf16 natively upwards
_ONEDNN_BF16_ISAS = ("AVX512_CORE_BF16", "AVX10_1_512", "AVX512_CORE_FP16", "AVX512_CORE_AMX",
                     "AVX512_CORE_AMX_FP16", "AVX10_2_512", "AVX10_2_512_AMX_2", "DEFAULT", "ALL")
_VECTOR_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16",
                 "amx_tile", "amx_bf16", "asimd", "sve", "sve2", "bf16")
_logged: set[tuple[str, bool]] = set()


@functools.lru_cache(maxsize=1)
def cpu_flags() -> frozenset[str]:
    """The CPU feature flags the kernel reports (Linux /proc/cpuinfo; empty elsewhere)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    match = re.search(r"^(?:flags|Features)\s*:\s*(.*)$", text, re.MULTILINE)
    return frozenset(match.group(1).split()) if match else frozenset()


@functools.lru_cache(maxsize=1)
def cpu_model() -> str:
    """The CPU's marketing name ("AMD EPYC", "Intel(R) Xeon(R) Platinum 8488C", ...)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
        match = re.search(r"^model name\s*:\s*(.*)$", text, re.MULTILINE)
        if match:
            return match.group(1).strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _hardware_bf16() -> bool:
    """True if the CPU itself computes bf16 (before any user limit on the kernels)."""
    try:
        import torch.cpu
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except (ImportError, AttributeError):    # an older torch: read the flags ourselves
        return bool({"avx512_bf16", "amx_bf16"} & cpu_flags())


def _limited_by_environment() -> str | None:
    """Why the user's environment keeps the kernels from bf16 instructions, if it does."""
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA", "").strip().upper()
    if isa and isa not in _ONEDNN_BF16_ISAS:
        return f"ONEDNN_MAX_CPU_ISA={isa}"
    aten = os.environ.get("ATEN_CPU_CAPABILITY", "").strip().lower()
    if aten in ("default", "avx2"):
        return f"ATEN_CPU_CAPABILITY={aten}"
    return None


def native_bf16() -> bool:
    """True when bf16 training is fast here: native bf16 in the CPU and not limited away."""
    return _hardware_bf16() and _limited_by_environment() is None


def use_bf16(setting: bool | str, what: str = "training") -> bool:
    """Resolve a bf16 option: True / False as given, "auto" -> `native_bf16()` (logged once)."""
    if isinstance(setting, str):
        if setting != "auto":
            raise ValueError(f"bf16 must be True, False or 'auto', got {setting!r}")
        choice = native_bf16()
        if (what, choice) not in _logged:
            _logged.add((what, choice))
            limit = _limited_by_environment()
            reason = ("the CPU computes bf16 natively" if choice else
                      f"bf16 is emulated here ({limit})" if limit else
                      "the CPU has no native bf16 (AVX-512 BF16 / AMX), where bf16 is emulated and slower")
            log.info("%s precision: %s (%s; %s)", what, "bfloat16 autocast" if choice else "float32",
                     reason, cpu_summary())
        return choice
    return bool(setting)


def cpu_summary() -> str:
    """CPU model, core count, vector extensions and torch's kernel level, for table headers."""
    vector = [f for f in _VECTOR_FLAGS if f in cpu_flags()]
    try:
        import torch
        capability = torch.backends.cpu.get_cpu_capability()
    except ImportError:    # pragma: no cover - torch is a dependency
        capability = "?"
    native = "native bf16" if native_bf16() else "no native bf16"
    return (f"{cpu_model()} ({os.cpu_count()} logical cores; {' '.join(vector) or 'flags unknown'}; "
            f"torch kernels {capability}; {native})")


def int8_linear(module):
    """A copy of `module` for inference whose `nn.Linear` layers compute in int8 (torch's dynamic
    quantisation: int8 weights per tensor, activations quantised per batch on the fly; fbgemm on
    x86, qnnpack on ARM). On the AVX2 EPYC this made EMDE's network 1.9x faster with Diginetica's
    HR@20 / MRR@20 unchanged to 0.05 points (docs/benchmarks/serve_load.md); measure on your model
    before serving it. The quantised copy is for inference only: it cannot be trained or saved.
    torch marks `torch.ao.quantization` deprecated in favour of the torchao package; the pinned
    torch still ships it and runs it on fbgemm's AVX2 kernels, which is what is measured here."""
    import warnings

    import torch
    engines = torch.backends.quantized.supported_engines
    engine = next((e for e in ("x86", "fbgemm", "qnnpack") if e in engines), None)
    if engine is None:
        raise RuntimeError(f"this torch build has no int8 engine (supported: {engines})")
    torch.backends.quantized.engine = engine
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)         # the deprecation notices of torch.ao
        warnings.simplefilter("ignore", DeprecationWarning)
        return torch.ao.quantization.quantize_dynamic(module, {torch.nn.Linear}, dtype=torch.qint8)
