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
