"""Sharded training with FSDP2 (``torch.distributed.fsdp.fully_shard``), the same code on CPU and GPU.

Launched with ``torchrun`` (:func:`torchrun_command`): accelerate then sets up the process group
(gloo on CPU, NCCL on GPU) and the trainer shards the student itself instead of ``accelerate.prepare``
(whose FSDP path runs un-sharded on CPU, so CI could never see it). Each decoder layer is one FSDP
unit and the root (embeddings, final norm, ``lm_head``) another. Everything that reads the model
goes through the root's forward: a submodule called alone (``model.base_model``) would skip the
root's all-gather and meet sharded embeddings. The root is sharded with ``reshard_after_forward=False``:
its parameters stay unsharded from its forward until backward, so the fused divergence can use
``lm_head.weight`` after the forward; its gradient is reduce-scattered with the rest.

Mixed precision: parameters and optimizer state in ``master_dtype`` (fp32), forward in ``dtype``
(bf16), gradients reduced in fp32 (:func:`mixed_precision`); without sharding, autocast does the
same (:func:`compute_autocast`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import sys
from collections.abc import Iterator, Sequence
from typing import Any

import torch
import torch.distributed as dist

log = logging.getLogger(__name__)


def is_sharded(model: torch.nn.Module) -> bool:
    """Whether ``model`` was sharded with FSDP2 (``fully_shard`` turns it into an ``FSDPModule`` in place)."""
    from torch.distributed.fsdp import FSDPModule

    return isinstance(model, FSDPModule)


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def require_process_group(what: str) -> None:
    """Raise naming the launcher when ``what`` needs a process group and none exists."""
    if not (dist.is_available() and dist.is_initialized()):
        raise ValueError(f"{what} needs a torch.distributed process group; launch with torchrun, e.g. "
                         "`python -m torch.distributed.run --nproc-per-node N -m paced.trainer RUN.json` "
                         "(paced.trainer.distributed.torchrun_command builds it)")


def decoder_layers(model: torch.nn.Module) -> list[torch.nn.Module]:
    """The repeated blocks of a transformers model (classes named by its ``_no_split_modules``)."""
    names = set(getattr(model, "_no_split_modules", None) or ())
    layers = [m for m in model.modules() if type(m).__name__ in names]
    if not layers:
        raise ValueError(f"{type(model).__name__} names no decoder layer class in _no_split_modules; "
                         "cannot choose FSDP units (use sharding: none)")
    return layers


def mixed_precision(compute: torch.dtype, master: torch.dtype) -> Any:
    """FSDP2 policy: all-gather and forward in ``compute``, gradients reduced in fp32; None when equal."""
    from torch.distributed.fsdp import MixedPrecisionPolicy

    if compute == master:
        return None
    return MixedPrecisionPolicy(param_dtype=compute, reduce_dtype=torch.float32)


def shard(model: torch.nn.Module, device: torch.device, *, compute: torch.dtype,
          master: torch.dtype) -> torch.nn.Module:
    """``fully_shard`` each decoder layer (resharded after its forward), then the root (kept
    unsharded from its forward until backward: the fused path reads ``lm_head.weight`` after the
    forward); returns the same, now sharded, module, its shards moved to ``device`` (a model still
    on the CPU never exists whole on the GPU)."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    require_process_group("sharding a model")
    mesh = init_device_mesh(device.type, (world_size(),))  # CPU runs stay on CPU even where CUDA exists
    kwargs: dict[str, Any] = {"mesh": mesh}
    policy = mixed_precision(compute, master)
    if policy is not None:
        kwargs["mp_policy"] = policy
    for layer in decoder_layers(model):
        fully_shard(layer, reshard_after_forward=True, **kwargs)
    fully_shard(model, reshard_after_forward=False, **kwargs)
    return model


def compute_autocast(device: torch.device, compute: torch.dtype, master: torch.dtype,
                     sharded: bool) -> contextlib.AbstractContextManager:
    """Autocast to ``compute`` for an unsharded model whose parameters are in ``master``; else a no-op."""
    if sharded or compute == master:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=compute)


def any_rank(flag: bool, device: torch.device) -> bool:
    """True on every rank when ``flag`` is true on any (a collective: every rank must call it)."""
    if world_size() == 1:
        return flag
    t = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return bool(t.item() > 0)


def max_over_ranks(value: int, device: torch.device) -> int:
    if world_size() == 1:
        return value
    t = torch.tensor([value], dtype=torch.int64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return int(t.item())


def sum_over_ranks(value: torch.Tensor) -> torch.Tensor:
    if world_size() == 1:
        return value
    value = value.clone()
    dist.all_reduce(value, op=dist.ReduceOp.SUM)
    return value


def clip_grad_norm_(parameters: Sequence[torch.Tensor], max_norm: float) -> float:
    """Clip to total L2 norm ``max_norm``; sharded (DTensor) gradients give the norm over all shards."""
    from torch.distributed.tensor import DTensor

    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return 0.0
    total = torch.nn.utils.get_total_norm(grads, 2.0)
    if isinstance(total, DTensor):
        total = total.full_tensor()  # the partial norms of every shard, reduced
    torch.nn.utils.clip_grads_with_norm_([p for p in parameters if p.grad is not None], max_norm, total)
    return float(total)


def local_tensor(t: torch.Tensor) -> torch.Tensor:
    """This rank's shard of a DTensor, or the tensor itself."""
    from torch.distributed.tensor import DTensor

    return t.to_local() if isinstance(t, DTensor) else t


def nonfinite_parameters(model: torch.nn.Module) -> list[str]:
    """Names of parameters with a NaN/inf in this rank's shard."""
    return [n for n, p in model.named_parameters()
            if p.is_floating_point() and not bool(torch.isfinite(local_tensor(p.detach())).all())]


def full_state_dict(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    """The whole model's state dict on CPU: gathered on rank 0 (empty elsewhere) when sharded."""
    if not is_sharded(model):
        return {k: v.detach().cpu() for k, v in model.state_dict().items()}
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def check_same_on_every_rank(model: torch.nn.Module, what: str, device: torch.device) -> None:
    """Raise on every rank when a replicated model differs between ranks (e.g. zeroed by a loader).

    Compares per-parameter float64 sums and absolute sums gathered from every rank: a cheap
    fingerprint that a zeroed or differently initialised copy cannot pass.
    """
    if world_size() == 1:
        return
    sums = torch.stack([torch.stack([p.detach().double().sum(), p.detach().double().abs().sum()]).cpu()
                        for p in model.parameters()]).to(device)  # (P, 2); NCCL gathers device tensors
    gathered = [torch.empty_like(sums) for _ in range(world_size())]
    dist.all_gather(gathered, sums)
    bad = [r for r, g in enumerate(gathered) if not torch.equal(g, gathered[0])]
    if bad:
        raise RuntimeError(f"{what} differs between ranks (ranks {bad} differ from rank 0; e.g. total |w| "
                           f"{float(gathered[0][:, 1].sum()):.6g} vs {float(gathered[bad[0]][:, 1].sum()):.6g}): "
                           "load it from its files on every rank (unset FSDP_CPU_RAM_EFFICIENT_LOADING)")


@contextlib.contextmanager
def load_on_every_rank() -> Iterator[None]:
    """Make transformers load real weights on every rank.

    Under ``accelerate launch`` with FSDP, ``FSDP_CPU_RAM_EFFICIENT_LOADING=true`` makes
    ``from_pretrained`` zero every parameter on ranks ≠ 0 and rely on FSDP to broadcast rank 0's; a
    model we shard ourselves (or a replicated teacher) is never broadcast, so it would stay zero.
    """
    key = "FSDP_CPU_RAM_EFFICIENT_LOADING"
    old = os.environ.get(key)
    os.environ[key] = "false"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = old


def free_port() -> int:
    """A TCP port that was free a moment ago (bind to port 0 and let the OS choose)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def torchrun_command(nproc: int, args: Sequence[str], *, port: int | None = None) -> list[str]:
    """``python -m torch.distributed.run`` on this machine with ``nproc`` processes on a free port.

    ``args``: what each process runs, e.g. ``["-m", "paced.trainer", "RUN.json", "--resume"]``.
    """
    if nproc < 1:
        raise ValueError(f"nproc={nproc} must be >= 1")
    return [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", str(nproc),
            "--master-addr", "127.0.0.1", "--master-port", str(port or free_port()), *args]
