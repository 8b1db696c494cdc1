"""Checks that run before any model weights load, and the loading itself.

:func:`validate_run` rejects a bad run early: stage steps that do not add up, an on-policy stage or
a pass-rate refresh without a sampler that can sample the in-training student, a separate teacher
without a path, and a teacher whose vocabulary differs from the student's (read from the model
configs and tokenizer files, not the weights).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from paced.availability import check_model_available
from paced.methods import MethodSpec
from paced.passrate.refresh import REFRESH_POLICIES
from paced.passrate.state import PassRateState
from paced.rollouts.base import SAMPLERS
from paced.tasks.base import DataError, Doc, Task, get_task
from paced.trainer.config import DistillConfig
from paced.trainer.distributed import (
    check_same_on_every_rank,
    is_sharded,
    load_on_every_rank,
    require_process_group,
    shard,
)
from paced.trainer.live_sampler import LIVE_SAMPLERS
from paced.trainer.step import StepContext
from paced.trainer.teacher import TeacherScorer, student_prompt, teacher_prompt

log = logging.getLogger(__name__)


def needs_live_sampler(config: DistillConfig, method: MethodSpec) -> bool:
    """Whether training samples the in-training student (on-policy stages or p̂ re-estimation)."""
    if any(s.on_policy for s in method.stages):
        return True
    return method.uses_pass_rates and (config.passrates is None or REFRESH_POLICIES.get(method.refresh).live)


def _vocab_size(path: str) -> int:
    from transformers import AutoConfig

    cfg = AutoConfig.from_pretrained(path, trust_remote_code=False)  # explicit: None would prompt on stdin
    text_cfg = cfg.get_text_config() if hasattr(cfg, "get_text_config") else cfg
    return int(text_cfg.vocab_size)


def _tokenizer_vocab(path: str) -> dict[str, int] | None:
    p = Path(path)
    if p.is_dir() and not any((p / f).is_file() for f in ("tokenizer.json", "tokenizer_config.json")):
        return None
    from transformers import AutoTokenizer

    return dict(AutoTokenizer.from_pretrained(path, trust_remote_code=False).get_vocab())


def check_same_vocabulary(student: str, teacher: str) -> None:
    """Raise ``ValueError`` if the teacher's vocabulary differs from the student's (configs only)."""
    vs, vt = _vocab_size(student), _vocab_size(teacher)
    if vs != vt:
        raise ValueError(f"teacher {teacher!r} has vocab_size={vt} but student {student!r} has "
                         f"vocab_size={vs}; token-level distillation needs one shared vocabulary")
    ts, tt = _tokenizer_vocab(student), _tokenizer_vocab(teacher)
    if ts is not None and tt is not None and ts != tt:
        diff = sorted(set(ts.items()) ^ set(tt.items()))[:3]
        raise ValueError(f"teacher {teacher!r} and student {student!r} tokenizers differ "
                         f"(e.g. {diff}); token-level distillation needs one shared tokenizer")


def check_device(device: str) -> None:
    """Raise ``ValueError`` when ``device='cuda'`` is asked for but no CUDA GPU is visible."""
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("DistillConfig.device='cuda' (the suite sets it when resources.gpus_train > 0) but no "
                         "CUDA GPU is visible to torch; run on a GPU node (check CUDA_VISIBLE_DEVICES and the "
                         "torch CUDA build) or set resources.gpus_train: 0 to train on CPU")


def validate_run(config: DistillConfig, method: MethodSpec, num_processes: int = 1) -> list[int]:
    """All checks that need no weights; returns the steps of each stage."""
    check_device(config.device)
    check_model_available(config.student, key="DistillConfig.student")
    if method.stages and method.teacher == "separate" and config.teacher is not None:
        check_model_available(config.teacher, key="DistillConfig.teacher")
    stage_steps = method.stage_steps(config.steps)
    get_task(config.task, chat_tokenizer=config.chat_tokenizer,
             enable_thinking=config.enable_thinking)  # unknown task -> "did you mean"
    if config.sampler is not None:
        SAMPLERS.get(config.sampler)  # unknown backend -> "did you mean"
    if needs_live_sampler(config, method):
        why = ("an on-policy stage" if any(s.on_policy for s in method.stages)
               else f"pass-rate estimation (weight_source='pass_rate', refresh={method.refresh!r})")
        if config.sampler is None:
            raise ValueError(f"method {method.id!r} needs {why}, but DistillConfig.sampler is None; "
                             f"set sampler to one of {', '.join(LIVE_SAMPLERS)}")
        if config.sampler not in LIVE_SAMPLERS:
            raise ValueError(f"method {method.id!r} needs {why} from the in-training student, which "
                             f"sampler {config.sampler!r} cannot sample; use one of "
                             f"{', '.join(LIVE_SAMPLERS)}")
        if config.sampler == "vllm":
            import importlib.util

            from paced.rollouts.vllm import INSTALL_HINT

            if importlib.util.find_spec("vllm") is None:
                raise ModuleNotFoundError(f"DistillConfig.sampler='vllm' ({why}): {INSTALL_HINT}, or sample in "
                                          "training with sampler='hf'")
            from paced.rollouts.live_vllm import check_engine_config

            check_engine_config(config.vllm)
    if method.stages and method.teacher == "separate":
        if config.teacher is None:
            raise ValueError(f"method {method.id!r} distils from a separate teacher, but "
                             "DistillConfig.teacher is None")
        check_same_vocabulary(config.student, config.teacher)
    elif config.teacher is not None and method.teacher == "self":
        log.warning("teacher=%r is ignored: method %r uses the student as its own teacher",
                    config.teacher, method.id)
    if config.batch_size < num_processes:
        raise ValueError(f"DistillConfig.batch_size={config.batch_size} is smaller than the "
                         f"{num_processes} processes; each process needs at least one problem per step")
    return stage_steps


def load_model(path: str | Path, dtype: Any, trainable: bool, trust_remote_code: bool = False) -> Any:
    from transformers import AutoModelForCausalLM

    with load_on_every_rank():  # never the zeroed copies FSDP_CPU_RAM_EFFICIENT_LOADING leaves on ranks > 0
        model = AutoModelForCausalLM.from_pretrained(str(path), dtype=dtype, trust_remote_code=trust_remote_code)
    model.train(trainable)
    if not trainable:
        model.requires_grad_(False)
    return model


def load_tokenizer(path: str | Path, trust_remote_code: bool = False) -> Any:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(path), trust_remote_code=trust_remote_code)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    return tok


def prepare_student(config: DistillConfig, acc: Any, ckpt: Path | None) -> tuple[Any, Any, Any]:
    """The trainable student in ``master_dtype`` with its AdamW and lr schedule: sharded with FSDP2
    (``sharding='fsdp'``) or prepared by accelerate (one process, or DDP)."""
    import torch
    from accelerate.utils import DistributedType

    if acc.distributed_type == DistributedType.FSDP:
        raise ValueError("this run was launched with accelerate's FSDP config, which reshards lm_head outside the "
                         "forward (the fused path cannot read it) and cannot be tested on CPU; set "
                         "DistillConfig.sharding='fsdp' and launch with torchrun "
                         "(paced.trainer.distributed.torchrun_command) instead")
    model = load_model(ckpt or config.student, config.torch_master_dtype, trainable=True,
                       trust_remote_code=config.trust_remote_code)
    if config.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if config.sharding == "fsdp":
        require_process_group("DistillConfig.sharding='fsdp'")
        check_same_on_every_rank(model, f"student {config.student!r}", acc.device)
        model = shard(model, acc.device, compute=config.torch_dtype, master=config.torch_master_dtype)
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    warm = config.warmup_steps
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: min(1.0, (s + 1) / (warm + 1)))
    if config.sharding != "fsdp":
        model, optimizer = acc.prepare(model, optimizer)
    return model, optimizer, scheduler


def load_teacher(config: DistillConfig, device: Any) -> Any:
    """The frozen teacher in ``dtype``, loaded from its files on every process, checked identical
    across processes, then kept whole (``teacher_sharding='replicate'``) or sharded (``'shard'``)."""
    assert config.teacher is not None, "a separate teacher needs DistillConfig.teacher (validate_run checks this)"
    teacher = load_model(config.teacher, config.torch_dtype, trainable=False,
                         trust_remote_code=config.trust_remote_code)
    check_same_on_every_rank(teacher, f"teacher {config.teacher!r}", device)
    if config.teacher_sharding == "shard":
        require_process_group("DistillConfig.teacher_sharding='shard'")
        return shard(teacher, device, compute=config.torch_dtype, master=config.torch_dtype)
    return teacher.to(device)


def make_accelerator(config: DistillConfig) -> Any:
    """An ``Accelerator`` (CPU when ``device='cpu'``), seeded with ``config.seed``."""
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    acc = Accelerator(cpu=config.device == "cpu")
    set_seed(config.seed)
    return acc


def read_references(path: str | Path) -> dict[str, str]:
    """``{id: reference}`` from a ``references.jsonl`` written by ``generate_references``."""
    out: dict[str, str] = {}
    for lineno, line in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
            out[str(row["id"])] = str(row["reference"])
        except (json.JSONDecodeError, KeyError, TypeError) as err:
            raise DataError(f"{path}:{lineno}: a reference row needs id and reference ({err})") from err
    return out


def reference_ids(config: DistillConfig, method: MethodSpec, task: Task, docs: Sequence[Doc],
                  tokenizer: Any) -> tuple[list[Doc], dict[str, list[int]]]:
    """The training pool and each problem's reference response ids (EOS appended).

    With any teacher-forced stage, problems without a reference (e.g. dropped by
    ``generate_references(only_correct=True)``) leave the pool; the count is logged.
    """
    if all(s.on_policy for s in method.stages):
        return list(docs), {}
    texts = read_references(config.references) if config.references else {
        d.id: ref for d in docs if (ref := task.reference(d)) is not None}
    pool = [d for d in docs if d.id in texts]
    if not pool:
        raise ValueError(f"no training problem has a reference (references={config.references!r}); "
                         "run generate_references or give the data a 'solution' field")
    if len(pool) < len(docs):
        log.warning("%d of %d problems have no reference and are left out", len(docs) - len(pool), len(docs))
    eos = tokenizer.eos_token_id
    refs = {d.id: tokenizer(texts[d.id], add_special_tokens=False)["input_ids"]
            + ([int(eos)] if eos is not None else []) for d in pool}
    return pool, refs


def build_context(config: DistillConfig, method: MethodSpec, task: Task, docs: Sequence[Doc], acc: Any,
                  ckpt: Path | None) -> tuple[StepContext, Any, Any, list[Doc]]:
    """Load the student (from ``ckpt`` when resuming), teacher, optimizer, scheduler and sampler."""
    from paced.trainer.live_sampler import build_live_sampler

    tokenizer = load_tokenizer(config.student, trust_remote_code=config.trust_remote_code)
    pool, refs = reference_ids(config, method, task, docs, tokenizer)
    model, optimizer, scheduler = prepare_student(config, acc, ckpt)
    student = model if is_sharded(model) else acc.unwrap_model(model)
    if method.teacher == "separate":
        teacher_model = load_teacher(config, acc.device)
        cache = int(config.teacher_cache_max_gb * 2**30) if config.teacher_cache == "memory" else 0
    else:
        teacher_model, cache = student, 0  # the current student, prompted with the answer; never cached

    def ids(text: str) -> list[int]:
        return list(tokenizer(text, add_special_tokens=False)["input_ids"])

    student_ids = {d.id: ids(student_prompt(task, d)) for d in pool}
    sampler = None
    if needs_live_sampler(config, method):
        sampler = build_live_sampler(config, student, tokenizer, optimizer,
                                     max((len(x) for x in student_ids.values()), default=1))
    ctx = StepContext(
        config=config, method=method, task=task, tokenizer=tokenizer, model=model,
        student_ids=student_ids,
        teacher_ids={d.id: ids(teacher_prompt(method, task, d)) for d in pool},
        references=refs,
        teacher=TeacherScorer(teacher_model, int(tokenizer.pad_token_id), cache_max_bytes=cache),
        sampler=sampler, state=PassRateState(method.smoothing), device=acc.device, rank=acc.process_index)
    return ctx, optimizer, scheduler, pool
