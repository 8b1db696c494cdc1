from datasets import Dataset
from transformers import AutoTokenizer

from paced.fixtures import build_paper_fixture
from paced.integrations.trl import GKDConfig, PacedGKDTrainer

models = build_paper_fixture("tiny-models")  # two tiny random Qwen3s; use your own teacher and student
rows = [{"id": f"q{i}", "messages": [{"role": "user", "content": f"{i}+1=?"},
                                     {"role": "assistant", "content": str(i + 1)}]} for i in range(8)]
PacedGKDTrainer(
    model=str(models["student"]), teacher_model=str(models["teacher"]),
    processing_class=AutoTokenizer.from_pretrained(models["student"]), train_dataset=Dataset.from_list(rows),
    args=GKDConfig(output_dir="trl-out", max_steps=2, per_device_train_batch_size=4, lmbda=0.0, bf16=False),
    pass_rates={f"q{i}": i / 8 for i in range(8)},  # p̂ per id, or a passrates.jsonl; w = p̂(1 - p̂)
).train()
