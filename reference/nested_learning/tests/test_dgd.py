"""Delta Gradient Descent (Eq. 55-57) against dense linear solves and autograd."""

import pytest
import torch
from torch import nn

from nested_learning.core.dgd import DGD, dgd_batch_update, dgd_step_size, dgd_update

DT = torch.float64


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def prox_argmin(W, X, U, eta):
    """argmin_W 1/2 mean_b ||W x_b - u_b||^2 + 1/(2 eta)||W - W_t||^2 by a dense linear solve.

    Zero gradient: W (I + eta X^T X / B) = W_t + eta U^T X / B, X [..., B, d_in], U [.., B, d_out].
    """
    n, d = X.shape[-2], X.shape[-1]
    A = torch.eye(d, dtype=X.dtype) + eta * X.mT @ X / n
    rhs = W + eta * U.mT @ X / n
    return torch.linalg.solve(A.mT, rhs.mT).mT


def objective(W, Wt, X, U, eta):
    fit = 0.5 * (X @ W.mT - U).square().sum(-1).mean(-1).sum()
    return fit + ((W - Wt).square() / (2 * eta)).sum()


@pytest.mark.parametrize("lead", [(), (3,), (2, 4)])
@pytest.mark.parametrize("d_out,d_in", [(3, 5), (6, 2)])
@pytest.mark.parametrize("x_scale", [0.3, 1.0, 4.0])
@pytest.mark.parametrize("tensor_eta", [False, True])
def test_dgd_update_is_exact_proximal_step(lead, d_out, d_in, x_scale, tensor_eta):
    """Eq. 56: the DGD step is the exact argmin of the L2 proximal objective."""
    W = torch.randn(*lead, d_out, d_in, dtype=DT)
    x = torch.randn(*lead, d_in, dtype=DT)
    x = x_scale * x / x.norm(dim=-1, keepdim=True)
    g = torch.randn(*lead, d_out, dtype=DT)
    eta = torch.rand(lead, dtype=DT) + 0.1 if tensor_eta else 0.7
    new = dgd_update(W, x, g, eta)
    eta_b = torch.as_tensor(eta, dtype=DT)[..., None, None]
    expected = prox_argmin(W, x[..., None, :], -g[..., None, :], eta_b)  # u = -grad_y
    torch.testing.assert_close(new, expected)
    # independent check: the objective is stationary at the update (it is strictly convex)
    Wv = new.clone().requires_grad_()
    (grad,) = torch.autograd.grad(objective(Wv, W, x[..., None, :], -g[..., None, :], eta_b), Wv)
    assert grad.abs().max() < 1e-10


@pytest.mark.parametrize("eta", [0.01, 0.5, 3.0])
def test_step_size_reduces_to_paper_form_at_unit_norm(eta):
    """Eq. 57's eta' = eta / (1 + eta) is the exact step at ||x|| = 1, and only there."""
    x = torch.nn.functional.normalize(torch.randn(4, 7, dtype=DT), dim=-1)
    torch.testing.assert_close(dgd_step_size(eta, x), torch.full((4,), eta / (1 + eta), dtype=DT))
    # ... and only there: the paper's eta/(1+eta) is not the proximal step for ||x|| != 1
    W, g = torch.randn(5, 7, dtype=DT), torch.randn(5, dtype=DT)
    x2 = 3 * x[0]
    paper = W - eta / (1 + eta) * torch.outer(W @ x2 + g, x2)
    assert not torch.allclose(paper, prox_argmin(W, x2[None], -g[None], eta))


def test_step_size_keeps_decay_contractive():
    x = torch.randn(100, 6, dtype=DT) * 10
    eta = torch.logspace(-3, 3, 100, dtype=DT)
    assert ((dgd_step_size(eta, x) * x.square().sum(-1)) < 1).all()


def test_dgd_update_gradcheck():
    args = [torch.randn(*s, dtype=DT, requires_grad=True) for s in [(2, 3, 4), (2, 4), (2, 3)]]
    eta = torch.rand(2, dtype=DT, requires_grad=True)
    assert torch.autograd.gradcheck(dgd_update, (*args, eta))


@pytest.mark.parametrize("n", [1, 3, 8, 20])  # n < d_in uses Woodbury, n >= d_in the direct solve
def test_batch_update_is_exact_batch_argmin(n):
    d_out, d_in, eta = 4, 8, 0.3
    W, X, U = (
        torch.randn(d_out, d_in, dtype=DT),
        torch.randn(n, d_in, dtype=DT),
        torch.randn(n, d_out, dtype=DT),
    )
    G = -U.T @ X / n  # gradient of a batch-mean loss whose per-sample surprise is -u_b
    new = dgd_batch_update(W, X, G, eta)
    torch.testing.assert_close(new, prox_argmin(W, X, U, eta))
    if n == 1:
        torch.testing.assert_close(new, dgd_update(W, X[0], -U[0], eta))


@pytest.mark.parametrize("lead", [(5,), (16,), (2, 3)])
def test_optimizer_takes_exact_batch_step(lead):
    d_in, d_out, lr = 8, 3, 0.2
    lin = nn.Linear(d_in, d_out).double()
    W0, b0 = lin.weight.detach().clone(), lin.bias.detach().clone()
    X, target = torch.randn(*lead, d_in, dtype=DT), torch.randn(*lead, d_out, dtype=DT)
    opt = DGD(lin.parameters(), lr=lr)
    opt.track(lin)
    y = lin(X)
    (0.5 * (y - target).square().sum(-1).mean()).backward()
    opt.step()
    # per-sample output gradient of the per-sample loss, computed by hand
    g = (X @ W0.T + b0 - target).reshape(-1, d_out)
    torch.testing.assert_close(lin.weight.detach(), prox_argmin(W0, X.reshape(-1, d_in), -g, lr))
    torch.testing.assert_close(lin.bias.detach(), b0 - lr * g.mean(0))  # bias: plain SGD


def test_optimizer_explicit_inputs_and_sgd_fallback():
    torch.manual_seed(0)
    a, b = nn.Linear(5, 4).double(), nn.Linear(5, 4).double()
    b.load_state_dict(a.state_dict())
    W0 = a.weight.detach().clone()
    X = torch.randn(7, 5, dtype=DT)
    for lin in (a, b):
        lin(X).square().mean().backward()
    grad = a.weight.grad.clone()
    DGD(a.parameters(), lr=0.1).step(inputs={a.weight: X})
    DGD(b.parameters(), lr=0.1).step()  # no recorded input -> SGD (the dot-product Eq. 55)
    torch.testing.assert_close(a.weight.detach(), dgd_batch_update(W0, X, grad, 0.1))
    torch.testing.assert_close(b.weight.detach(), W0 - 0.1 * grad)


def test_tracked_inputs_are_consumed():
    lin = nn.Linear(3, 2).double()
    opt = DGD(lin.parameters(), lr=0.1)
    handles = opt.track(lin)
    lin(torch.randn(4, 3, dtype=DT)).sum().backward()
    opt.step()
    W1, grad = lin.weight.detach().clone(), lin.weight.grad.clone()
    opt.step()  # no new forward: the stale input must not be reused -> SGD
    torch.testing.assert_close(lin.weight.detach(), W1 - 0.1 * grad)
    for h in handles:
        h.remove()


def test_bad_lr():
    with pytest.raises(ValueError, match="lr"):
        DGD(nn.Linear(2, 2).parameters(), lr=0.0)
