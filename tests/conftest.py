"""Keep tests light on a shared 2-core machine: one torch thread, fixed seed per test."""

import pytest
import torch

torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)
