import math

import numpy as np
import pytest
import torch

from indiseek.nn import (
    MLP,
    BatchwiseStandardization,
    ContrastiveCritic,
    GaussianCLUB,
    LinearErasure,
    MomentsCLUB,
    RunningWhitening,
    orthogonality,
    symmetric_info_nce,
)


def test_mlp_counts_linear_layers_and_keeps_signal_scale():
    torch.manual_seed(0)
    net = MLP(40, 30, n_hidden=64, n_layers=5)
    assert sum(isinstance(m, torch.nn.Linear) for m in net) == 5
    assert sum(isinstance(m, torch.nn.ReLU) for m in net) == 4
    x = torch.randn(4096, 40)
    with torch.no_grad():
        ratio = float(net(x).var() / x.var())
    # a default-initialised 5-layer MLP shrinks the variance by ~1000x; the He initialisation keeps it O(1)
    assert 0.1 < ratio < 10


@pytest.mark.parametrize("n_layers", [0, -1])
def test_mlp_rejects_bad_sizes(n_layers):
    with pytest.raises(ValueError, match="n_layers"):
        MLP(3, 3, n_layers=n_layers)


def test_mlp_dropout_acts_only_in_training():
    torch.manual_seed(0)
    plain, dropped = MLP(6, 4, n_hidden=32, n_layers=3), MLP(6, 4, n_hidden=32, n_layers=3, dropout=0.5)
    assert [m.p for m in dropped if isinstance(m, torch.nn.Dropout)] == [0.5, 0.5]
    assert not any(isinstance(m, torch.nn.Dropout) for m in plain)
    # same linear maps: copy the plain network's weights in order
    linears = [m for m in dropped if isinstance(m, torch.nn.Linear)]
    for target, source in zip(linears, [m for m in plain if isinstance(m, torch.nn.Linear)], strict=True):
        target.load_state_dict(source.state_dict())
    x = torch.randn(64, 6)
    dropped.eval()
    torch.testing.assert_close(dropped(x), plain(x))
    dropped.train()
    first, second = dropped(x), dropped(x)
    assert not torch.allclose(first, second)
    assert not torch.allclose(first, plain(x))


@pytest.mark.parametrize("dropout", [-0.1, 1.0, float("nan"), True, "0.2"])
def test_mlp_rejects_bad_dropout(dropout):
    with pytest.raises(ValueError, match="dropout"):
        MLP(3, 3, dropout=dropout)


def test_club_bound_matches_all_pairs_definition():
    torch.manual_seed(0)
    club = GaussianCLUB(3, 4, n_hidden=8, n_layers=2)
    c, z = torch.randn(17, 3), torch.randn(17, 4)
    mu, logvar = club.moments(c)
    # definition with the B x B x d tensor of all pairs (diagonal included)
    log_q = -0.5 * ((z[None, :, :] - mu[:, None, :]) ** 2 / logvar.exp()[:, None, :]).sum(-1)  # [i, j]
    expected = (log_q.diagonal() - log_q.mean(dim=1)).mean()
    torch.testing.assert_close(club(c, z), expected, rtol=1e-5, atol=1e-5)


def _fit(club, c, z, steps=1500):
    opt = torch.optim.Adam(club.parameters(), lr=3e-3)
    for _ in range(steps):
        idx = torch.randint(0, c.shape[0], (256,))
        loss = club.learning_loss(c[idx], z[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return float(club(c, z))


def test_club_estimates_known_gaussian_dependence_and_independence():
    # z = c + e with c, e ~ N(0, 1): the CLUB value with the true conditional is a^2 / sigma^2 = 1 per coordinate,
    # an upper bound of the true MI 0.5 log 2 = 0.35; for independent z it is 0.
    torch.manual_seed(0)
    c = torch.randn(4000, 2)
    dependent = _fit(GaussianCLUB(2, 2, n_hidden=32, n_layers=2), c, c + torch.randn(4000, 2))
    independent = _fit(GaussianCLUB(2, 2, n_hidden=32, n_layers=2), c, torch.randn(4000, 2))
    assert dependent > 2 * 0.5 * math.log(2)
    assert dependent == pytest.approx(2.0, abs=0.4)
    assert abs(independent) < 0.1


def test_info_nce_values():
    same = torch.nn.functional.normalize(torch.ones(8, 3), dim=1)
    # identical embeddings carry no information about the pairing: the loss is log(batch)
    torch.testing.assert_close(symmetric_info_nce(same, same, torch.tensor(2.0)), torch.tensor(math.log(8)))
    one_hot = torch.eye(8)
    assert float(symmetric_info_nce(one_hot, one_hot, torch.tensor(math.log(100.0)))) < 1e-3


def test_moments_club_has_the_closed_form_value_for_linear_gaussian_dependence():
    # z = c + e, var(c) = var(e) = 1: the true conditional gives CLUB = 1 per coordinate (see above)
    torch.manual_seed(0)
    c = torch.randn(20000, 2)
    club = MomentsCLUB(2, 2)
    club.fit(c, c + torch.randn(20000, 2))
    assert float(club(c, c + torch.randn(20000, 2))) == pytest.approx(2.0, abs=0.1)
    torch.testing.assert_close(club.coef[1:], torch.eye(2), atol=0.03, rtol=0)
    club.fit(c, torch.randn(20000, 2))
    assert abs(float(club(c, torch.randn(20000, 2)))) < 0.02


def test_moments_club_misses_nonlinear_dependence_that_the_learned_estimator_sees():
    # z = c^2 - 1 is uncorrelated with c but a function of it: only the learned conditional mean can find it
    torch.manual_seed(0)
    c = torch.randn(4000, 1)
    z = c**2 - 1
    moments = MomentsCLUB(1, 1)
    moments.fit(c, z)
    assert abs(float(moments(c, z))) < 0.05
    assert _fit(GaussianCLUB(1, 1, n_hidden=32, n_layers=2), c, z) > 1.0


def test_moments_club_bound_matches_all_pairs_definition_with_full_covariance():
    torch.manual_seed(0)
    c = torch.randn(300, 3)
    z = c @ torch.randn(3, 4) + torch.randn(300, 4) @ torch.randn(4, 4)
    club = MomentsCLUB(3, 4)
    club.fit(c, z)
    mu = torch.cat([torch.ones(300, 1), c], dim=1) @ club.coef
    precision = club.whitener @ club.whitener.T
    diff = z[None, :, :] - mu[:, None, :]  # [i, j, d]
    log_q = -0.5 * torch.einsum("ijd,de,ije->ij", diff, precision, diff)
    expected = (log_q.diagonal() - log_q.mean(dim=1)).mean()
    torch.testing.assert_close(club(c, z), expected, rtol=1e-4, atol=1e-4)
    # the whitener inverts the residual covariance
    residual = z - mu
    torch.testing.assert_close(
        precision @ (residual.T @ residual / 300), torch.eye(4), atol=0.02, rtol=0
    )  # up to the ridge


def test_orthogonality_is_zero_for_uncorrelated_and_positive_for_correlated_batches():
    torch.manual_seed(0)
    a = torch.randn(4096, 3)
    assert float(orthogonality(a, torch.randn(4096, 2))) < 0.05
    # identical one-dimensional representations: every normalised row is +-1, the cross-product sums to B
    assert float(orthogonality(a[:, :1], a[:, :1])) == pytest.approx(1.0)


def test_contrastive_critic_learns_the_pairing_and_stays_at_log_b_without_information():
    torch.manual_seed(0)
    x = torch.randn(2048, 5)
    critic = ContrastiveCritic(5, 5, n_hidden=32)
    opt = torch.optim.Adam(critic.parameters(), lr=3e-3)
    for _ in range(300):
        idx = torch.randint(0, 2048, (128,))
        loss = critic(x[idx] + 0.1 * torch.randn(128, 5), x[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        informed = float(critic(x[:128], x[:128]))
        uninformed = float(critic(torch.randn(128, 5), x[:128]))
    assert informed < 0.5 * math.log(128)
    assert uninformed > 0.8 * math.log(128)
    with pytest.raises(ValueError, match="temperature"):
        ContrastiveCritic(2, 2, temperature=0)


def test_running_whitening_whitens_with_moving_moments_that_the_gradient_does_not_see():
    torch.manual_seed(0)
    mixing = torch.tensor([[2.0, 0.0, 0.0], [1.0, 0.1, 0.0], [0.0, 0.05, 0.001]])
    whiten = RunningWhitening(3, momentum=0.5, eps=1e-9)
    for _ in range(30):  # the moving averages settle on the moments of the distribution
        whiten.update(torch.randn(2000, 3) @ mixing + 5.0)
    x = torch.randn(20000, 3) @ mixing + 5.0
    out = whiten(x)
    whiten.update(x[:1])  # a single cell has no covariance: nothing changes
    assert int(whiten.n_updates) == 30
    np.testing.assert_allclose(out.mean(dim=0).numpy(), 0.0, atol=0.05)
    np.testing.assert_allclose(torch.cov(out.T).numpy(), np.eye(3), atol=0.05)
    # the output is a linear map of x whose matrix is a constant: the Jacobian is W itself, and reading x changes nothing
    x = torch.randn(50, 3, requires_grad=True)
    whiten(x).sum().backward()
    np.testing.assert_allclose(x.grad[0].numpy(), whiten.whitener.sum(dim=1).numpy(), rtol=1e-5)
    assert int(whiten.n_updates) == 30
    # the eigenvalue floor: with a large eps the smallest direction is no longer blown up to unit variance
    floored = RunningWhitening(3, momentum=1.0, eps=1.0)
    z = torch.randn(5000, 3) @ mixing
    floored.update(z)
    z = floored(z)
    assert torch.cov(z.T).diagonal().min() < 0.1


def test_batchwise_standardization_uses_each_batchs_own_moments():
    torch.manual_seed(0)
    norm = BatchwiseStandardization(2, n_batch=3, momentum=0.5, min_cells=16)
    codes = torch.cat([torch.zeros(100), torch.ones(50), torch.full((5,), 2)]).long()
    onehot = torch.nn.functional.one_hot(codes, 3).float()
    shift, scale = torch.tensor([[0.0, 0.0], [4.0, -2.0], [9.0, 9.0]]), torch.tensor([[1.0, 1.0], [3.0, 0.5], [1, 1]])
    z = torch.randn(155, 2) * scale[codes] + shift[codes]
    out = norm(z, onehot)
    for b in (0, 1):  # batches with enough cells: standardised by their own minibatch moments
        np.testing.assert_allclose(out[codes == b].mean(0).detach().numpy(), 0.0, atol=1e-5)
        np.testing.assert_allclose(out[codes == b].std(0, unbiased=False).detach().numpy(), 1.0, rtol=1e-4)
    # 5 cells of batch 2 (under min_cells): standardised by its running moments as they were (0 and 1)
    torch.testing.assert_close(out[codes == 2], z[codes == 2])
    # every batch with two cells or more moved its running moments half of the way (momentum 0.5)
    torch.testing.assert_close(norm.running_mean[2], 0.5 * z[codes == 2].mean(0))
    torch.testing.assert_close(norm.running_mean[1], 0.5 * z[codes == 1].mean(0))
    # calibrate sets the moments exactly; at inference a mixture row uses the mixture's mean and variance
    norm.calibrate(onehot.T.double() @ z.double(), onehot.T.double() @ z.double() ** 2, onehot.sum(0))
    torch.testing.assert_close(norm.running_var[1], z[codes == 1].var(0))
    norm.eval()
    np.testing.assert_allclose(norm(z, onehot)[codes == 1].std(0).numpy(), 1.0, rtol=1e-4)
    half = torch.tensor([[0.5, 0.5, 0.0]])  # an equal mixture of batches 0 and 1 (cells of an unseen batch)
    mean, var = norm.running_mean[:2], norm.running_var[:2]
    mixture_var = var.mean(0) + 0.25 * (mean[0] - mean[1]) ** 2
    torch.testing.assert_close(norm(z[:1], half), (z[:1] - mean.mean(0)) / mixture_var.sqrt())


def test_linear_erasure_equalises_the_batch_means_and_keeps_what_is_unrelated():
    from sklearn.linear_model import LogisticRegression

    torch.manual_seed(0)
    codes = torch.arange(900) % 3
    onehot = torch.nn.functional.one_hot(codes, 3).float()
    signal = torch.randn(900, 2)
    shift = torch.tensor([[0.0, 0.0], [1.5, -1.0], [-0.5, 2.0]])[codes]
    x = torch.cat([signal, 0.3 * torch.randn(900, 2) + shift], dim=1)
    erasure = LinearErasure(4)
    torch.testing.assert_close(erasure(x), x)  # the identity before fitting
    assert LogisticRegression(max_iter=1000).fit(x.numpy(), codes.numpy()).score(x.numpy(), codes.numpy()) > 0.9
    erasure.fit(x, onehot)
    y = erasure(x)
    for b in range(3):  # every batch has the pooled mean
        torch.testing.assert_close(y[codes == b].mean(0), y.mean(0), atol=1e-4, rtol=0)
    assert LogisticRegression(max_iter=1000).fit(y.numpy(), codes.numpy()).score(y.numpy(), codes.numpy()) < 0.40
    assert np.linalg.matrix_rank(erasure.projection.numpy(), tol=1e-6) == 2  # one direction per batch after the first
    for j in range(2):  # the coordinates unrelated to the batch are kept
        assert np.corrcoef(x[:, j].numpy(), y[:, j].numpy())[0, 1] > 0.99
    fresh = LinearErasure(4)
    fresh.load_state_dict({})  # a model saved before the erasure existed loads with the identity
    torch.testing.assert_close(fresh(x), x)
    erasure.reset()
    torch.testing.assert_close(erasure(x), x)
