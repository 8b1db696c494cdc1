"""A job imports only what it uses: the report stages read results files and never need torch,
transformers or lm-eval (seconds of import per job), and the lazily bound torch still works."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "transformers", "lm_eval", "datasets", "vllm")


def test_report_stages_import_no_model_code():
    code = ("import sys; import paced, paced.report, paced.report.calibration, paced.report.ablations, "
            "paced.pipeline.report, paced.methods, paced.kernels, paced.divergences; "
            "from paced.methods import METHODS, load_method; load_method('paced-fkl-then-rkl').kernel.build(); "
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr


def test_lazy_module_imports_on_first_use_and_replaces_itself():
    from paced._lazy import LazyModule

    namespace: dict = {}
    namespace["json_"] = LazyModule("json", namespace, alias="json_")
    assert "not imported yet" in repr(namespace["json_"])
    assert namespace["json_"].dumps([1]) == "[1]"
    import json

    assert namespace["json_"] is json  # later lookups are plain global lookups


def test_kernels_and_divergences_still_take_tensors():
    import torch

    from paced.divergences import forward_kl
    from paced.kernels import beta_kernel, get_kernel, normalize_weights

    p = torch.tensor([0.0, 0.25, 1.0])
    torch.testing.assert_close(beta_kernel(p), p * (1 - p))
    torch.testing.assert_close(get_kernel("uniform", floor=0.1)(p), torch.ones(3))
    torch.testing.assert_close(normalize_weights(torch.tensor([1, 3])), torch.tensor([0.25, 0.75]))
    logits = torch.randn(2, 3, 5)
    torch.testing.assert_close(forward_kl(student_logits=logits, teacher_logits=logits), torch.zeros(2))
