import numpy as np
import pytest
import torch

from paced import weighted_loss


def test_normalisations_closed_forms():
    loss = torch.tensor([1.0, 2.0, 4.0])
    w = torch.tensor([0.0, 1.0, 3.0])
    assert weighted_loss(loss, w, "sum").item() == pytest.approx((2 + 12) / 4)
    assert weighted_loss(loss, w, "mean_one").item() == pytest.approx(np.mean([0, 2 * 0.75, 4 * 2.25]))
    assert weighted_loss(loss, w, "none").item() == pytest.approx((0 + 2 + 12) / 3)
    assert weighted_loss(loss, [1, 1, 1], "sum").item() == pytest.approx(7 / 3)
    assert weighted_loss(loss, np.ones(3), "none").item() == pytest.approx(7 / 3)


def test_all_zero_weights_zero_loss_keeps_graph():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    loss = x * 3
    for norm in ("sum", "mean_one", "none"):
        out = weighted_loss(loss, torch.zeros(2), norm)
        assert out.item() == 0.0 and out.requires_grad
        (g,) = torch.autograd.grad(out, x, retain_graph=True)
        assert torch.equal(g, torch.zeros(2))


def test_zero_weight_drops_infinite_loss():
    loss = torch.tensor([float("inf"), 2.0])
    assert weighted_loss(loss, torch.tensor([0.0, 1.0])).item() == 2.0
    assert weighted_loss(loss, torch.tensor([0.0, 0.0])).item() == 0.0


def test_gradient_is_weighted():
    x = torch.tensor([1.0, 1.0], requires_grad=True)
    weighted_loss(x * 2, torch.tensor([1.0, 3.0]), "sum").backward()
    torch.testing.assert_close(x.grad, torch.tensor([0.5, 1.5]))


def test_bad_inputs():
    loss = torch.ones(3)
    with pytest.raises(ValueError, match=r"weights shape \(2,\) does not match per_sequence_loss shape"):
        weighted_loss(loss, torch.ones(2))
    with pytest.raises(ValueError, match=r"weights must be finite and >= 0; got -1"):
        weighted_loss(loss, torch.tensor([1.0, -1.0, 0.0]))
    with pytest.raises(ValueError, match=r"per_sequence_loss must be a 1-D tensor"):
        weighted_loss(torch.ones(2, 2), torch.ones(2, 2))
    with pytest.raises(ValueError, match=r"Did you mean 'mean_one'"):
        weighted_loss(loss, torch.ones(3), "mean1")


@pytest.mark.parametrize("norm", ["sum", "mean_one", "none"])
def test_dropped_infinite_loss_gets_exactly_zero_gradient(norm):
    loss = torch.tensor([float("inf"), 2.0, float("nan")], requires_grad=True)
    w = torch.tensor([0.0, 1.5, 0.0], requires_grad=True)  # e.g. a learnable kernel's output: still a constant
    weighted_loss(loss, w, norm).backward()
    assert loss.grad[0].item() == 0.0 and loss.grad[2].item() == 0.0 and loss.grad[1].item() > 0
    assert w.grad is None or bool(torch.isfinite(w.grad).all())  # 0 · inf must not reach the weights


def _logits_with_impossible_teacher_token():
    torch.manual_seed(0)
    student = torch.randn(3, 4, 6)
    teacher = torch.randn(3, 4, 6)
    teacher[0, :, 2] = -float("inf")  # reverse KL of row 0 is infinite: the teacher gives token 2 probability 0
    return student, teacher, torch.ones(3, 4, dtype=torch.bool)


@pytest.mark.parametrize("norm", ["sum", "mean_one", "none"])
def test_weighted_divergence_keeps_dropped_rows_out_of_the_graph(norm):
    from paced import reverse_kl
    from paced.weighting import weighted_divergence

    student, teacher, mask = _logits_with_impossible_teacher_token()
    w = torch.tensor([0.0, 1.0, 3.0])
    s1 = student.clone().requires_grad_()
    out = weighted_divergence("reverse_kl", w, student_logits=s1, teacher_logits=teacher, mask=mask,
                              normalisation=norm)
    out.backward()
    assert bool(torch.isfinite(s1.grad).all()) and bool((s1.grad[0] == 0).all())
    # the same value and gradients as weighted_loss on the live rows padded with ℓ = 0
    s2 = student.clone().requires_grad_()
    live = reverse_kl(student_logits=s2[1:], teacher_logits=teacher[1:], mask=mask[1:])
    ref = weighted_loss(torch.cat([torch.zeros(1), live]), w, norm)
    ref.backward()
    torch.testing.assert_close(out, ref)
    torch.testing.assert_close(s1.grad, s2.grad)
    # what weighted_divergence avoids: the full-batch divergence then weighted_loss gives NaN gradients
    s3 = student.clone().requires_grad_()
    weighted_loss(reverse_kl(student_logits=s3, teacher_logits=teacher, mask=mask), w, norm).backward()
    assert bool(torch.isnan(s3.grad[0]).any())


def test_weighted_divergence_all_zero_and_bad_weights():
    from paced.weighting import weighted_divergence

    student, teacher, mask = _logits_with_impossible_teacher_token()
    s = student.clone().requires_grad_()
    out = weighted_divergence("forward_kl", torch.zeros(3), student_logits=s, teacher_logits=teacher, mask=mask)
    out.backward()
    assert out.item() == 0.0 and bool((s.grad == 0).all())
    with pytest.raises(ValueError, match=r"weights shape \(2,\) does not match the batch of student_logits"):
        weighted_divergence("forward_kl", torch.ones(2), student_logits=s, teacher_logits=teacher, mask=mask)
