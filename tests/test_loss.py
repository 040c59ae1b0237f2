"""The PW loss against hand-computed references, values and gradients."""

import math

import numpy as np
import pytest
import torch

from fairprune.errors import FairpruneError
from fairprune.loss import (
    ERR_BINARY_TARGET,
    ERR_GAMMA,
    ERR_MIN_WEIGHT,
    ERR_REDUCTION,
    ERR_TARGET_RANGE,
    ERR_UNKNOWN_LOSS,
    LOSSES,
    PW_PRESETS,
    get_loss,
    performance_weighted_loss,
)


def _softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()


def reference_multiclass(logits, targets, dense, w_min, gamma, soft=True, weights=True):
    """Per-sample loop, straight from the paper's definitions."""
    out = []
    for z, y, zd in zip(logits, targets, dense, strict=True):
        q = _softmax(zd)
        p = q[y]
        w = w_min + (1 - w_min) * (1 - p) ** gamma if weights else 1.0
        one_hot = np.eye(len(z))[y]
        t = q if (soft and q.argmax() == y) else one_hot
        log_s = np.log(_softmax(z))
        out.append(w * -(t * log_s).sum())
    return np.array(out)


LOGITS = np.array([[2.0, 0.5, -1.0], [0.1, 0.2, 0.3], [-1.0, 3.0, 0.0], [0.0, 0.0, 0.0]])
DENSE = np.array([[3.0, 0.0, 0.0], [1.0, 0.0, 0.5], [0.0, 2.0, 0.1], [0.2, 0.1, 2.0]])
TARGETS = np.array([0, 2, 1, 0])  # sample 1 and 3 are dense mistakes


def test_multiclass_first_sample_by_hand():
    # dense q for [3, 0, 0]: e^3 / (e^3 + 2); the dense model is right, so t = q
    e3 = math.exp(3.0)
    q = np.array([e3, 1.0, 1.0]) / (e3 + 2.0)
    w = 0.75 + 0.25 * (1 - q[0]) ** 5
    z = np.array([2.0, 0.5, -1.0])
    log_s = z - math.log(np.exp(z).sum())
    expected = w * -(q * log_s).sum()
    got = performance_weighted_loss(
        torch.tensor(LOGITS[:1]),
        torch.tensor(TARGETS[:1]),
        torch.tensor(DENSE[:1]),
        min_weight=0.75,
        gamma=5.0,
    )
    assert got.item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize(
    "soft,weights", [(True, True), (False, True), (True, False), (False, False)]
)
def test_multiclass_matches_reference_and_ablations(soft, weights):
    expected = reference_multiclass(LOGITS, TARGETS, DENSE, 0.3, 1.5, soft, weights)
    got = performance_weighted_loss(
        torch.tensor(LOGITS),
        torch.tensor(TARGETS),
        torch.tensor(DENSE),
        min_weight=0.3,
        gamma=1.5,
        soft_targets=soft,
        sample_weights=weights,
        reduction="none",
    )
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-6)
    mean = performance_weighted_loss(
        torch.tensor(LOGITS),
        torch.tensor(TARGETS),
        torch.tensor(DENSE),
        min_weight=0.3,
        gamma=1.5,
        soft_targets=soft,
        sample_weights=weights,
    )
    assert mean.item() == pytest.approx(expected.mean(), rel=1e-6)


def test_plain_ce_when_both_ablated_and_w_min_one():
    got = performance_weighted_loss(
        torch.tensor(LOGITS),
        torch.tensor(TARGETS),
        torch.tensor(DENSE),
        min_weight=1.0,
        gamma=2.0,
        soft_targets=False,
    )
    ce = torch.nn.functional.cross_entropy(torch.tensor(LOGITS), torch.tensor(TARGETS))
    assert got.item() == pytest.approx(ce.item(), rel=1e-7)


def test_multiclass_gradient_is_w_times_softmax_minus_target():
    z = torch.tensor(LOGITS, requires_grad=True)
    dense = torch.tensor(DENSE, requires_grad=True)
    loss = performance_weighted_loss(
        z, torch.tensor(TARGETS), dense, min_weight=0.5, gamma=2.0, reduction="sum"
    )
    loss.backward()
    for i in range(len(LOGITS)):
        q = _softmax(DENSE[i])
        y = TARGETS[i]
        w = 0.5 + 0.5 * (1 - q[y]) ** 2
        t = q if q.argmax() == y else np.eye(3)[y]
        np.testing.assert_allclose(z.grad[i].numpy(), w * (_softmax(LOGITS[i]) - t), rtol=1e-6)
    assert dense.grad is None  # the dense outputs are constants


def _sigmoid(x):
    return 1 / (1 + np.exp(-x))


@pytest.mark.parametrize("shape", [(4,), (4, 1)])
@pytest.mark.parametrize("soft,weights", [(True, True), (False, True), (True, False)])
def test_binary_sigmoid_form(shape, soft, weights):
    z = np.array([0.3, -1.2, 2.0, 0.0])
    zd = np.array([1.5, 0.4, -0.7, -2.0])
    y = np.array([1.0, 0.0, 1.0, 0.0])  # dense: right, wrong, wrong, right
    q = _sigmoid(zd)
    p = np.where(y == 1, q, 1 - q)
    w = 0.8 + 0.2 * (1 - p) ** 2.5 if weights else np.ones(4)
    right = (q > 0.5) == (y == 1)
    t = np.where(right, q, y) if soft else y
    s = _sigmoid(z)
    expected = w * -(t * np.log(s) + (1 - t) * np.log(1 - s))
    zt = torch.tensor(z.reshape(shape), requires_grad=True)
    got = performance_weighted_loss(
        zt,
        torch.tensor(y.astype(np.int64)),
        torch.tensor(zd.reshape(shape)),
        min_weight=0.8,
        gamma=2.5,
        soft_targets=soft,
        sample_weights=weights,
        reduction="none",
    )
    np.testing.assert_allclose(got.detach().numpy(), expected, rtol=1e-6)
    got.sum().backward()
    np.testing.assert_allclose(zt.grad.reshape(-1).numpy(), w * (s - t), rtol=1e-6)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"min_weight": 1.5, "gamma": 1.0}, ERR_MIN_WEIGHT.format(value=1.5)),
        ({"min_weight": -0.1, "gamma": 1.0}, ERR_MIN_WEIGHT.format(value=-0.1)),
        ({"min_weight": 0.5, "gamma": -1.0}, ERR_GAMMA.format(value=-1.0)),
        (
            {"min_weight": 0.5, "gamma": 1.0, "reduction": "max"},
            ERR_REDUCTION.format(value="max"),
        ),
    ],
)
def test_invalid_arguments(kwargs, message):
    with pytest.raises(ValueError) as err:
        performance_weighted_loss(
            torch.tensor(LOGITS), torch.tensor(TARGETS), torch.tensor(DENSE), **kwargs
        )
    assert str(err.value) == message


def test_shape_and_target_errors():
    with pytest.raises(ValueError, match="must have the same shape"):
        performance_weighted_loss(
            torch.zeros(4, 3), torch.zeros(4, dtype=torch.long), torch.zeros(4, 2),
            min_weight=0.5, gamma=1.0,
        )  # fmt: skip
    with pytest.raises(ValueError) as err:
        performance_weighted_loss(
            torch.zeros(2, 3), torch.tensor([0, 3]), torch.zeros(2, 3), min_weight=0.5, gamma=1.0
        )
    assert str(err.value) == ERR_TARGET_RANGE.format(classes=3, lo=0, hi=3)
    with pytest.raises(ValueError) as err:
        performance_weighted_loss(
            torch.zeros(2), torch.tensor([0.0, 2.0]), torch.zeros(2), min_weight=0.5, gamma=1.0
        )
    assert str(err.value) == ERR_BINARY_TARGET.format(values=[2.0])


def test_loss_table_and_presets():
    assert set(LOSSES) == {"ce", "pw", "pw_weights", "pw_soft", "constrained"}
    assert PW_PRESETS["CelebA, AutoBot"] == (0.3, 1.0)
    assert PW_PRESETS["Fitzpatrick17k, Taylor"] == (0.95, 3.0)
    z, y, d = torch.tensor(LOGITS), torch.tensor(TARGETS), torch.tensor(DENSE)
    ce = LOSSES["ce"].make()(z, y, None)
    assert ce.item() == pytest.approx(torch.nn.functional.cross_entropy(z, y).item())
    # constrained: the objective is plain CE; the constraints live in fairprune.constrained
    assert LOSSES["constrained"].make()(z, y, d).item() == pytest.approx(ce.item())
    assert LOSSES["constrained"].uses_dense and LOSSES["constrained"].constrained
    pw = LOSSES["pw_weights"].make(0.3, 1.5)(z, y, d)
    expected = reference_multiclass(LOGITS, TARGETS, DENSE, 0.3, 1.5, soft=False).mean()
    assert pw.item() == pytest.approx(expected, rel=1e-6)
    with pytest.raises(FairpruneError) as err:
        get_loss("focal")
    assert str(err.value) == ERR_UNKNOWN_LOSS.format(
        name="focal", choices="ce, pw, pw_weights, pw_soft, constrained"
    )
