"""The distillation trainer: ``distill(DistillConfig(...), method)`` (accelerate loop, resumable)."""

from paced.trainer.config import DistillConfig
from paced.trainer.loop import DistillResult, distill
from paced.trainer.step import NonFiniteLossError

__all__ = ["DistillConfig", "DistillResult", "NonFiniteLossError", "distill"]
