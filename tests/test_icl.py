"""labs.icl against independent references: loops and NumPy least squares, brute-force
nearest neighbours, closed-form ridge, labs.gpt's attention, and causality by perturbation."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from labs import gpt, icl


def _xy(seed: int, B: int, K: int, D: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(B, K, D, generator=g), torch.randn(B, K, generator=g)


def test_format_prompt_zero_one_few_shot():
    zero = icl.format_prompt([], "cat", "Translate English to French.")
    assert zero == "Translate English to French.\n\nInput: cat\nOutput:"
    one = icl.format_prompt([("dog", "chien")], "cat")
    assert one == "Input: dog\nOutput: chien\n\nInput: cat\nOutput:"
    few = icl.format_prompt([("dog", "chien"), ("house", "maison")], "cat", "Translate.")
    assert few.count("Input:") == 3 and few.startswith("Translate.\n\n")


def test_sample_linear_tasks_shapes_noise_and_active_dims():
    g = torch.Generator().manual_seed(0)
    tasks = icl.sample_linear_tasks(4, 7, 6, noise_std=0.0, active_dims=3, generator=g)
    assert tasks.xs.shape == (4, 7, 6) and tasks.ys.shape == (4, 7) and tasks.w.shape == (4, 6)
    assert torch.all(tasks.xs[..., 3:] == 0) and torch.all(tasks.w[:, 3:] == 0)
    torch.testing.assert_close(tasks.ys, torch.einsum("bkd,bd->bk", tasks.xs, tasks.w))
    noisy = icl.sample_linear_tasks(2000, 5, 2, noise_std=0.5, generator=g)
    assert abs((noisy.ys - noisy.clean).std().item() - 0.5) < 0.02
    with pytest.raises(ValueError, match="active_dims"):
        icl.sample_linear_tasks(1, 2, 3, active_dims=4)


def test_build_prompt_matches_a_loop_and_rejects_bad_shapes():
    xs, ys = _xy(1, 2, 4, 3)
    prompt = icl.build_prompt(xs, ys)
    assert prompt.shape == (2, 8, 4)
    for i in range(4):
        torch.testing.assert_close(prompt[:, 2 * i, :3], xs[:, i])
        assert torch.all(prompt[:, 2 * i, 3] == 0)
        torch.testing.assert_close(prompt[:, 2 * i + 1, :3], xs[:, i])
        torch.testing.assert_close(prompt[:, 2 * i + 1, 3], ys[:, i])
    with pytest.raises(ValueError, match="same B and K"):
        icl.build_prompt(xs, ys[:, :3])


def test_least_squares_matches_numpy_lstsq_per_position():
    xs, ys = _xy(2, 3, 9, 4)
    preds = icl.least_squares_predict(xs, ys)
    assert torch.all(preds[:, 0] == 0)
    X, Y = xs.double().numpy(), ys.double().numpy()
    for b in range(3):
        for i in range(1, 9):
            w_hat = np.linalg.lstsq(X[b, :i], Y[b, :i], rcond=None)[0]  # min-norm when i < D
            assert abs(preds[b, i].item() - X[b, i] @ w_hat) < 1e-3


def test_least_squares_is_exact_on_noiseless_tasks_after_d_examples():
    tasks = icl.sample_linear_tasks(8, 10, 3, generator=torch.Generator().manual_seed(3))
    preds = icl.least_squares_predict(tasks.xs, tasks.ys)
    torch.testing.assert_close(preds[:, 3:], tasks.ys[:, 3:], atol=1e-4, rtol=1e-4)


def test_ridge_matches_closed_form_and_approaches_least_squares():
    xs, ys = _xy(4, 2, 6, 3)
    lam = 0.7
    preds = icl.ridge_predict(xs, ys, lam)
    X, Y = xs.double().numpy(), ys.double().numpy()
    for b in range(2):
        for i in range(1, 6):
            A = X[b, :i]
            w_hat = np.linalg.solve(A.T @ A + lam * np.eye(3), A.T @ Y[b, :i])
            assert abs(preds[b, i].item() - X[b, i] @ w_hat) < 1e-4
    tiny = icl.ridge_predict(xs, ys, 1e-6)
    torch.testing.assert_close(
        tiny[:, 4:], icl.least_squares_predict(xs, ys)[:, 4:], atol=1e-3, rtol=1e-3
    )
    with pytest.raises(ValueError, match="lam"):
        icl.ridge_predict(xs, ys, 0.0)


def test_nearest_neighbour_and_averaging_by_brute_force():
    xs, ys = _xy(5, 2, 7, 3)
    nn_preds = icl.nearest_neighbour_predict(xs, ys)
    avg_preds = icl.averaging_predict(xs, ys)
    for b in range(2):
        assert nn_preds[b, 0] == 0 and avg_preds[b, 0] == 0
        for i in range(1, 7):
            dists = [float(((xs[b, j] - xs[b, i]) ** 2).sum()) for j in range(i)]
            assert nn_preds[b, i] == ys[b, int(np.argmin(dists))]
            w_hat = sum(ys[b, j] * xs[b, j] for j in range(i)) / i
            assert abs(avg_preds[b, i].item() - float(w_hat @ xs[b, i])) < 1e-5


def test_error_by_k_zero_prediction_scores_about_one():
    tasks = icl.sample_linear_tasks(4000, 3, 5, generator=torch.Generator().manual_seed(6))
    err = icl.error_by_k(torch.zeros_like(tasks.ys), tasks.ys, 5)
    assert err.shape == (3,) and torch.all((err - 1).abs() < 0.1)


def _regressor(**overrides) -> icl.ICLRegressor:
    torch.manual_seed(0)
    settings = {"dim": 3, "n_points": 6, "n_layer": 2, "n_head": 2, "n_embd": 16}
    return icl.ICLRegressor(icl.ICLConfig(**(settings | overrides))).eval()


def test_regressor_prediction_i_ignores_y_i_and_later_examples():
    model = _regressor()
    xs, ys = _xy(7, 2, 6, 3)
    base = model(xs, ys)
    assert base.shape == (2, 6)
    ys2 = ys.clone()
    ys2[:, 3] += 5.0  # the label being predicted at position 3
    xs2 = xs.clone()
    xs2[:, 4:] += 1.0  # later examples
    with torch.no_grad():
        torch.testing.assert_close(model(xs, ys2)[:, :4], base[:, :4])
        torch.testing.assert_close(model(xs2, ys)[:, :4], base[:, :4])
        assert not torch.allclose(model(xs, ys2)[:, 4:], base[:, 4:])


def test_regressor_clear_errors():
    model = _regressor()
    with pytest.raises(ValueError, match="dimensions"):
        model(*_xy(0, 1, 4, 5))
    with pytest.raises(ValueError, match="at most 6"):
        model(*_xy(0, 1, 7, 3))


def test_meta_training_lowers_the_loss():
    model = _regressor(dim=2, n_points=8)
    config = gpt.TrainConfig(
        batch_size=32, max_steps=200, learning_rate=3e-3, min_lr=3e-4, warmup_steps=10
    )
    losses = icl.train_icl(
        model, config, noise_std=0.1, generator=torch.Generator().manual_seed(0), progress=False
    )
    assert len(losses) == 200
    assert np.mean(losses[-20:]) < 0.85 * np.mean(losses[:20])  # measured: 1.01 -> 0.72
    with pytest.raises(ValueError, match="task_dims"):
        icl.train_icl(model, config, noise_std=0.0, generator=torch.Generator(), task_dims=3)


def test_repeated_tokens_and_per_token_loss_shapes():
    idx = icl.repeated_tokens(3, 5, 11, generator=torch.Generator().manual_seed(0))
    assert idx.shape == (3, 10) and torch.equal(idx[:, :5], idx[:, 5:]) and idx.max() < 11
    model = icl.AttentionOnly(11, 10, n_layer=2, n_head=2, n_embd=8)
    loss = icl.per_token_loss(model, idx)
    assert loss.shape == (3, 9)
    assert abs(loss.mean().item() - np.log(11)) < 0.05  # near-uniform at init
    with pytest.raises(ValueError, match="seq_len"):
        icl.repeated_tokens(1, 1, 5)


def test_pattern_attention_matches_gpt_attention():
    config = gpt.GPTConfig(vocab_size=5, block_size=8, n_layer=1, n_head=2, n_embd=8)
    torch.manual_seed(1)
    reference = gpt.CausalSelfAttention(config)
    mine = icl.PatternAttention(config)
    mine.load_state_dict(reference.state_dict())
    x = torch.randn(2, 7, 8)
    torch.testing.assert_close(mine(x), reference(x), atol=1e-6, rtol=1e-5)
    assert mine.pattern.shape == (2, 2, 7, 7)
    torch.testing.assert_close(mine.pattern.sum(-1), torch.ones(2, 2, 7))
    assert torch.all(mine.pattern.triu(1) == 0)  # causal


def test_induction_and_previous_token_scores_on_handmade_patterns():
    L, T = 4, 8
    pattern = torch.zeros(1, 2, T, T)
    pattern[0, :, 0, 0] = 1
    for t in range(1, T):
        pattern[0, 1, t, t - 1] = 1
        pattern[0, 0, t, t - L + 1 if t >= L else 0] = 1
    torch.testing.assert_close(icl.induction_score(pattern, L), torch.tensor([1.0, 0.0]))
    torch.testing.assert_close(icl.previous_token_score(pattern)[1], torch.tensor(1.0))
    with pytest.raises(ValueError, match="2 \\* seq_len"):
        icl.induction_score(pattern, 3)
