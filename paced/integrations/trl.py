"""PACED inside TRL: :class:`PacedGKDTrainer`, a subclass of TRL 1.16's ``GKDTrainer`` that weights each example.

TRL's ``GKDTrainer`` computes one token-averaged generalized-JSD loss over the whole batch. PACED needs a loss per
*example*, weighted by a kernel of that problem's pass rate (docs/paper.md):

    L = Σᵢ w(p̂ᵢ) ℓᵢ / Σᵢ w(p̂ᵢ),      ℓᵢ = mean over the response tokens of example i of the divergence

so this subclass only rewires two things: at construction it turns each example's pass rate (a dataset column, a
``{id: p̂}`` mapping or a ``passrates.jsonl`` file) into a ``paced_weight`` column that the collator carries into the
batch, and ``compute_loss`` replaces the JSD by paced's per-sequence divergence (``forward_kl`` by default: the
direction is named, not set through GKD's ``beta``) and :func:`paced.weighting.weighted_loss`. Everything else —
on-policy sampling with ``lmbda``, ``seq_kd``, the teacher's placement, logging — is GKD's. ``GKDConfig.beta`` is
not used. TRL's main-codebase ``DistillationTrainer`` would also do, but its loss is a 2,000-line chunked pipeline;
GKD's single ``compute_loss`` is the natural seam.

The loss is a micro-batch mean (the authors' normalisation), so the Trainer divides it by the gradient-accumulation
steps itself (``model_accepts_loss_kwargs = False``).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from paced.divergences import get_divergence
from paced.kernels import Kernel, get_kernel
from paced.weighting import weighted_loss

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")  # GKD lives in trl.experimental; its notice is not ours
try:
    from trl.experimental.gkd import GKDConfig, GKDTrainer
    from trl.experimental.utils import DataCollatorForChatML
except ModuleNotFoundError as err:  # pragma: no cover - exercised only without the extra
    raise ModuleNotFoundError("paced.integrations.trl needs TRL >= 1.16: pip install 'paced[trl]'") from err

log = logging.getLogger(__name__)

WEIGHT_COLUMN = "paced_weight"


def example_weights(dataset: Any, kernel: Kernel, *, pass_rates: str | Path | Mapping[str, float] | None = None,
                    pass_rate_column: str = "p_hat", id_column: str = "id") -> list[float]:
    """One weight w(p̂) per row of ``dataset`` (a ``datasets.Dataset``).

    p̂ comes from ``pass_rates`` (a ``passrates.jsonl`` path or an ``{id: p̂}`` mapping, matched on ``id_column``)
    or, when ``pass_rates`` is None, from the dataset's ``pass_rate_column``. A row without a pass rate raises
    ``ValueError`` naming it.
    """
    columns = set(dataset.column_names)
    if pass_rates is None:
        if pass_rate_column not in columns:
            raise ValueError(f"the dataset has no {pass_rate_column!r} column (columns: {sorted(columns)}); add "
                             f"one, or pass pass_rates= a passrates.jsonl or an {{id: p_hat}} mapping")
        p = [float(x) for x in dataset[pass_rate_column]]
    else:
        if id_column not in columns:
            raise ValueError(f"pass_rates are matched on the {id_column!r} column, which the dataset lacks "
                             f"(columns: {sorted(columns)}); set id_column=")
        if isinstance(pass_rates, Mapping):
            table = {str(k): float(v) for k, v in pass_rates.items()}
        else:
            from paced.passrate.files import read_p_hat

            table = read_p_hat(pass_rates)
        ids = [str(i) for i in dataset[id_column]]
        missing = [i for i in ids if i not in table]
        if missing:
            raise ValueError(f"{len(missing)} example(s) have no pass rate in pass_rates, e.g. id {missing[0]!r}")
        p = [table[i] for i in ids]
    return [float(w) for w in kernel(torch.tensor(p, dtype=torch.float64))]


class WeightCarryingCollator:
    """Wraps a collator: takes ``paced_weight`` off each example, collates the rest, adds the weights [B]."""

    def __init__(self, inner: Callable[[list[dict[str, Any]]], dict[str, Any]]) -> None:
        self.inner = inner

    def __call__(self, examples: list[dict[str, Any]]) -> dict[str, Any]:
        weights = [float(e[WEIGHT_COLUMN]) for e in examples]
        batch = self.inner([{k: v for k, v in e.items() if k != WEIGHT_COLUMN} for e in examples])
        batch[WEIGHT_COLUMN] = torch.tensor(weights, dtype=torch.float32)
        return batch


def _with_weights(dataset: Any, kernel: Kernel, **source: Any) -> Any:
    if dataset is None or isinstance(dataset, Mapping):
        return {k: _with_weights(v, kernel, **source) for k, v in dataset.items()} if dataset else dataset
    if WEIGHT_COLUMN in dataset.column_names:
        dataset = dataset.remove_columns(WEIGHT_COLUMN)
    return dataset.add_column(WEIGHT_COLUMN, example_weights(dataset, kernel, **source))


class PacedGKDTrainer(GKDTrainer):
    """``GKDTrainer`` with PACED's per-example weights: ``Σ w(p̂ᵢ) ℓᵢ / Σ w(p̂ᵢ)`` over each micro-batch.

    Extra keyword arguments (everything else is ``GKDTrainer``'s):

    - ``kernel``: a :class:`paced.kernels.Kernel` or a kernel name (default ``"beta"``, α = β = 1: w = p(1 − p));
      ``kernel_params`` its parameters (``{"alpha": 2.0}``, ``{"floor": 0.01}``);
    - ``pass_rates``: a ``passrates.jsonl`` path or ``{id: p̂}``, matched on ``id_column``; without it the
      datasets' ``pass_rate_column`` (default ``"p_hat"``) is read;
    - ``divergence``: ``forward_kl`` (default; teacher-forced, as the paper's FKL track), ``reverse_kl``, ``jsd``
      or ``adaptive_kl``, with ``divergence_params``;
    - ``normalisation``: ``sum`` (default, the authors'), ``mean_one`` or ``none``.
    """

    def __init__(self, *args: Any, kernel: Kernel | str = "beta", kernel_params: Mapping[str, float] | None = None,
                 pass_rates: str | Path | Mapping[str, float] | None = None, pass_rate_column: str = "p_hat",
                 id_column: str = "id", divergence: str = "forward_kl",
                 divergence_params: Mapping[str, float] | None = None, normalisation: str = "sum",
                 **kwargs: Any) -> None:
        self.paced_kernel = kernel if isinstance(kernel, Kernel) else get_kernel(kernel, **dict(kernel_params or {}))
        self.paced_divergence = get_divergence(divergence, **dict(divergence_params or {}))
        weighted_loss(torch.zeros(1), torch.ones(1), normalisation)  # an unknown name fails before any model work
        self.paced_normalisation = normalisation
        source = {"pass_rates": pass_rates, "pass_rate_column": pass_rate_column, "id_column": id_column}
        for key in ("train_dataset", "eval_dataset"):
            if kwargs.get(key) is not None:
                kwargs[key] = _with_weights(kwargs[key], self.paced_kernel, **source)
        args_ = kwargs.get("args") if "args" in kwargs else (args[2] if len(args) > 2 else None)
        if kwargs.get("data_collator") is None:
            processing_class = kwargs.get("processing_class")
            max_length = getattr(args_, "max_length", None)
            kwargs["data_collator"] = DataCollatorForChatML(tokenizer=processing_class, max_length=max_length)
        kwargs["data_collator"] = WeightCarryingCollator(kwargs["data_collator"])
        super().__init__(*args, **kwargs)
        self.model_accepts_loss_kwargs = False

    def paced_per_sequence_loss(self, model: Any, inputs: Mapping[str, torch.Tensor]) -> tuple[torch.Tensor, Any]:
        """ℓ [B]: the divergence, averaged over each example's response tokens (labels ≠ -100), and the
        student's outputs. Logits at position t predict token t + 1, as in GKD."""
        student = model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
        self.teacher_model.eval()
        with torch.no_grad():
            teacher = self.teacher_model(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"])
        mask = inputs["labels"][:, 1:] != -100  # (B, T-1)
        per_seq = self.paced_divergence(student_logits=student.logits[:, :-1, :],
                                        teacher_logits=teacher.logits[:, :-1, :], mask=mask)
        return per_seq, student

    def compute_loss(self, model: Any, inputs: dict[str, Any], return_outputs: bool = False,
                     num_items_in_batch: Any = None) -> Any:
        if WEIGHT_COLUMN not in inputs:
            raise ValueError(f"the batch has no {WEIGHT_COLUMN!r}: build PacedGKDTrainer with the dataset it "
                             f"trains on (it adds the column), and keep its data collator")
        per_seq, student = self.paced_per_sequence_loss(model, inputs)
        loss = weighted_loss(per_seq, inputs[WEIGHT_COLUMN].to(per_seq.device), self.paced_normalisation)
        return (loss, student) if return_outputs else loss


__all__ = ["WEIGHT_COLUMN", "GKDConfig", "PacedGKDTrainer", "WeightCarryingCollator", "example_weights"]
