"""FairPrune: exact Hessian diagonals (three ways) and the paper's saliency gap, direction included."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from fairprune.config import PruneConfig
from fairprune.data.base import SplitData
from fairprune.errors import FairpruneError
from fairprune.prune import hessian
from fairprune.prune import hessian_saliency as hs
from fairprune.prune.context import PruneContext
from fairprune.prune.objective import ERR_GROUP_NAME
from fairprune.prune.registry import CRITERIA
from fairprune.prune.unstructured import prunable_weights, weight_sparsity


class ResidualBN(nn.Module):
    """conv-BN-ReLU → conv-BN + residual → ReLU → pool → head: BN and an add, ReLU only."""

    def __init__(self, outputs=2):
        super().__init__()
        self.c1 = nn.Conv2d(3, 3, 3, padding=1, bias=False)
        self.b1 = nn.BatchNorm2d(3)
        self.c2 = nn.Conv2d(3, 3, 3, padding=1, bias=False)
        self.b2 = nn.BatchNorm2d(3)
        self.fc = nn.Linear(3, outputs)
        for bn in (self.b1, self.b2):  # trained-looking statistics, so eval-mode BN is not identity
            bn.running_mean.uniform_(-0.3, 0.3)
            bn.running_var.uniform_(0.5, 2.0)
            bn.weight.data.uniform_(0.5, 1.5)
            bn.bias.data.uniform_(-0.2, 0.2)

    def forward(self, x):
        h = F.relu(self.b1(self.c1(x)))
        h = torch.relu(h + self.b2(self.c2(h)))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(h, 1), 1))


def tanh_mlp():
    """A chain BackPACK's DiagHessian handles; tanh makes diag(H) differ from diag(GGN)."""
    return nn.Sequential(
        nn.Flatten(), nn.Linear(12, 6), nn.Tanh(), nn.Linear(6, 5), nn.Sigmoid(), nn.Linear(5, 3)
    )


class SiLUNet(nn.Module):
    """A smooth activation BackPACK cannot take twice: the exact HVP path."""

    def __init__(self):
        super().__init__()
        self.l1 = nn.Linear(12, 6)
        self.l2 = nn.Linear(6, 4)
        self.fc = nn.Linear(4, 2)

    def forward(self, x):
        return self.fc(F.silu(self.l2(F.silu(self.l1(torch.flatten(x, 1))))))


def exact_diagonal(model, xs, ys) -> dict:
    """Diagonal of torch.autograd.functional.hessian of the mean loss, prunable weights only."""
    model.eval()
    layers = prunable_weights(model)
    shapes = [m.weight.shape for _, m in layers]
    flat = torch.cat([m.weight.detach().reshape(-1) for _, m in layers])
    x, y = torch.cat(xs), torch.cat(ys)

    def loss(v):
        params, start = {}, 0
        for (name, _), shape in zip(layers, shapes, strict=True):
            params[f"{name}.weight"] = v[start : start + shape.numel()].view(shape)
            start += shape.numel()
        out = torch.func.functional_call(model, params, (x,))
        if out.shape[1] == 1:
            return F.binary_cross_entropy_with_logits(out[:, 0], y.float())
        return F.cross_entropy(out, y)

    diag = torch.autograd.functional.hessian(loss, flat, vectorize=True).diagonal()
    result, start = {}, 0
    for (name, _), shape in zip(layers, shapes, strict=True):
        result[name] = diag[start : start + shape.numel()].view(shape)
        start += shape.numel()
    return result


def _batches(sizes, classes, size=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [
        (torch.rand(n, 3, size, size, generator=g), torch.randint(0, classes, (n,), generator=g))
        for n in sizes
    ]


@pytest.mark.parametrize(
    ("make", "classes", "size", "method"),
    [
        (tanh_mlp, 3, 2, "backpack-diag-hessian"),
        (ResidualBN, 2, 4, "backpack-ggn"),
        (lambda: ResidualBN(outputs=1), 2, 4, "backpack-ggn"),  # single-logit sigmoid head
        (SiLUNet, 2, 2, "hvp"),
    ],
)
def test_hessian_diagonal_equals_the_exact_hessian(make, classes, size, method):
    torch.manual_seed(0)
    model = make().eval()
    batches = _batches([5, 3], classes, size)  # unequal batches: the mean is sample-weighted
    diag, how = hessian.hessian_diagonal(model, batches)
    assert how == method
    exact = exact_diagonal(model, [x for x, _ in batches], [y for _, y in batches])
    assert set(diag) == set(exact) and len(diag) >= 2
    for name in exact:
        assert torch.allclose(diag[name], exact[name], atol=1e-6, rtol=1e-4), name
    assert max(float(d.abs().max()) for d in exact.values()) > 1e-5  # not a vacuous match


@pytest.mark.filterwarnings("ignore:Full backward hook")
def test_ggn_would_not_be_exact_with_smooth_activations():
    # why the tanh chain takes DiagHessian: its GGN diagonal differs from the Hessian's
    from backpack import backpack, extend
    from backpack.extensions import DiagGGNExact

    torch.manual_seed(0)
    model = tanh_mlp().eval()
    (x, y), = _batches([6], 3)  # fmt: skip
    exact = exact_diagonal(model, [x], [y])
    ext = extend(tanh_mlp().eval())
    ext.load_state_dict(model.state_dict())
    with backpack(DiagGGNExact()):
        extend(nn.CrossEntropyLoss())(ext(x), y).backward()
    assert not torch.allclose(ext[1].weight.diag_ggn_exact, exact["1"], atol=1e-6)


def test_saliency_is_the_papers_gap_and_the_smallest_are_pruned():
    torch.manual_seed(0)
    model = ResidualBN().eval()
    batches = [(x, y, torch.tensor([0, 1, 0, 1, 1, 0])[: len(y)]) for x, y in _batches([6], 2, 4)]
    x, y, g = batches[0]
    beta = 0.3
    sal, how = hs.fairprune_saliency(model, batches, privileged=0, unprivileged=1, beta=beta)
    assert how == "backpack-ggn"
    h_u = exact_diagonal(model, [x[g == 1]], [y[g == 1]])
    h_p = exact_diagonal(model, [x[g == 0]], [y[g == 0]])
    for name, m in prunable_weights(model):
        want = 0.5 * m.weight.detach() ** 2 * (h_u[name] - beta * h_p[name])  # S_u − β S_p
        assert torch.allclose(sal[name], want, atol=1e-7, rtol=1e-4)

    # through the criterion: each layer loses exactly its smallest-saliency half
    n = 6
    split = SplitData(
        y.numpy(), g.numpy(), [str(i) for i in range(n)], 4,
        images=(x * 255).round().to(torch.uint8),
    )  # fmt: skip
    cfg = PruneConfig(criterion="fairprune", target_reduction=0.5, calib_batches=1,
                      calib_batch_size=n, fairprune_privileged="0", fairprune_unprivileged="1",
                      fairprune_beta=beta)  # fmt: skip
    result = CRITERIA["fairprune"].prune(model, cfg, PruneContext(4, split=split))
    pruned, sparsity = result.model, result.weight_sparsity
    xs = split.uint8(np.arange(n)).float() / 255.0  # what the criterion saw
    sal, _ = hs.fairprune_saliency(model, [(xs, y, g)], privileged=0, unprivileged=1, beta=beta)
    for name, m in dict(pruned.named_modules()).items():
        if name not in sal:
            continue
        s = sal[name].reshape(-1)
        zeroed = (m.weight.reshape(-1) == 0).nonzero().reshape(-1)
        assert len(zeroed) == 41  # of 81: the layer keeps round(40.5) = 40
        assert s[zeroed].max() <= s[m.weight.reshape(-1) != 0].min()
    assert sparsity == weight_sparsity(pruned) == pytest.approx(82 / 162)
    assert (pruned.fc.weight == model.fc.weight).all()  # head untouched
    assert (model.c1.weight != 0).all()  # the argument is untouched


def test_groups_default_to_best_and_worst_dense_accuracy():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 2))
    with torch.no_grad():
        model[1].weight.zero_()
        model[1].bias.copy_(torch.tensor([1.0, 0.0]))  # always predicts class 0
    x = torch.rand(9, 3, 2, 2)
    g = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2])
    y = torch.tensor([0, 0, 0, 0, 1, 1, 0, 0, 1])  # accuracies: g0 1.0, g1 1/3, g2 2/3
    batches = [(x, y, g)]
    names = ["light", "dark", "medium"]
    assert hs.choose_groups(model, batches, PruneConfig(), names) == (0, 1)
    cfg = PruneConfig(fairprune_privileged="medium", fairprune_unprivileged="1")
    assert hs.choose_groups(model, batches, cfg, names) == (2, 1)
    with pytest.raises(FairpruneError) as err:
        hs.choose_groups(model, batches, PruneConfig(fairprune_privileged="dark"), names)
    assert str(err.value) == hs.ERR_SAME_GROUP.format(group="dark")
    with pytest.raises(FairpruneError) as err:
        hs.choose_groups(model, batches, PruneConfig(fairprune_privileged="violet"), names)
    assert str(err.value) == ERR_GROUP_NAME.format(name="violet", choices="light, dark, medium")
    with pytest.raises(FairpruneError) as err:
        hs.choose_groups(model, [(x[:3], y[:3], g[:3])], PruneConfig(), names)
    assert str(err.value) == hs.ERR_ONE_GROUP.format(n=1)


def test_large_networks_without_an_exact_backpack_path_are_refused(monkeypatch):
    monkeypatch.setattr(hessian, "HVP_MAX_WEIGHTS", 50)
    with pytest.raises(FairpruneError) as err:
        hessian.hessian_diagonal(SiLUNet(), _batches([4], 2))
    assert str(err.value) == hessian.ERR_HESSIAN.format(layers="SiLU", n=12 * 6 + 6 * 4, limit=50)
    with pytest.raises(FairpruneError) as err:
        hs.prune(SiLUNet(), PruneConfig(fairprune_beta=0), split=None)
    assert str(err.value) == hs.ERR_BETA.format(beta=0.0)


def test_direction_the_privileged_group_gives_up_accuracy():
    """Two groups, two rules (group 0's label is pixel a, group 1's pixel b), both learnt densely.

    S = S_u − β S_p with the smallest pruned removes what only the privileged group needs: the
    group named privileged loses its rule, the unprivileged group keeps its accuracy. Swapping
    the names swaps who pays, so the sign (which group's saliency is subtracted) is checked.
    """
    rng = np.random.default_rng(0)
    n = 1000
    img = rng.integers(0, 256, size=(n, 3, 2, 2)).astype(np.uint8)
    groups = np.arange(n) % 2
    img[:, 2, 1, 1] = np.where(groups == 1, 255, 0)
    labels = np.where(groups == 0, img[:, 0, 0, 0] > 127, img[:, 1, 0, 0] > 127).astype(int)
    split = SplitData(labels, groups, [str(i) for i in range(n)], 2, images=torch.from_numpy(img))
    torch.manual_seed(0)
    dense = nn.Sequential(nn.Flatten(), nn.Linear(12, 32), nn.ReLU(), nn.Linear(32, 2))
    from fairprune.config import TrainConfig
    from fairprune.train import train_dense

    train_dense(dense, split, TrainConfig(epochs=40, batch_size=100, lr=1e-2))

    def accuracy(model):
        with torch.no_grad():
            right = torch.cat([model(x) for x, *_ in split.batches(500)]).argmax(1).numpy()
        right = right == labels
        return np.array([right[groups == k].mean() for k in (0, 1)])

    before = accuracy(dense)
    assert (before > 0.97).all()
    for privileged, unprivileged in ((0, 1), (1, 0)):
        cfg = PruneConfig(criterion="fairprune", target_reduction=0.5, calib_batches=4,
                          calib_batch_size=128, fairprune_privileged=str(privileged),
                          fairprune_unprivileged=str(unprivileged))  # fmt: skip
        pruned = CRITERIA["fairprune"].prune(dense, cfg, PruneContext(2, split=split)).model
        drop = before - accuracy(pruned)
        assert drop[privileged] > 0.3  # its rule is gone: about chance on its rows
        assert drop[unprivileged] < 0.1
