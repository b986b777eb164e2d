"""Unit tests for modes, devices and seeding (``labs.runtime``)."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch

from labs import runtime

# --------------------------------------------------------------------------- smoke_default


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1", True),
        ("true", True),
        ("yes", True),
        (" TRUE ", True),
        ("on", True),
        ("0", False),
        ("false", False),
        ("", False),
        ("no", False),
        ("off", False),
    ],
)
def test_smoke_default_values(monkeypatch, value, expected):
    """AIGC_LAB_SMOKE understands the usual spellings of yes and no."""
    monkeypatch.setenv("AIGC_LAB_SMOKE", value)
    assert runtime.smoke_default() is expected


def test_smoke_default_unset(monkeypatch):
    """Unset means the full lesson."""
    monkeypatch.delenv("AIGC_LAB_SMOKE", raising=False)
    assert runtime.smoke_default() is False


def test_smoke_default_invalid(monkeypatch):
    """An unrecognised value is an error naming the variable and what to use."""
    monkeypatch.setenv("AIGC_LAB_SMOKE", "maybe")
    with pytest.raises(ValueError) as excinfo:
        runtime.smoke_default()
    message = str(excinfo.value)
    assert "AIGC_LAB_SMOKE" in message
    assert "'maybe'" in message
    assert "use 1" in message and "0" in message


# --------------------------------------------------------------------------- get_device


def test_get_device_auto():
    """'auto' is CUDA when PyTorch sees a GPU, else the CPU."""
    expected = "cuda" if torch.cuda.is_available() else "cpu"
    assert runtime.get_device("auto").type == expected
    assert runtime.get_device().type == expected


@pytest.mark.parametrize("name", ["cpu", "CPU", " cpu "])
def test_get_device_cpu(name):
    """'cpu' (any case, padded) is the CPU."""
    assert runtime.get_device(name) == torch.device("cpu")


@pytest.mark.parametrize("name", ["tpu", "gpu", ""])
def test_get_device_unknown(name):
    """An unknown device name is an error listing the choices."""
    with pytest.raises(ValueError, match="unknown device") as excinfo:
        runtime.get_device(name)
    for choice in runtime.DEVICE_CHOICES:
        assert choice in str(excinfo.value)


@pytest.mark.parametrize("name", ["cuda", "cuda:0"])
def test_get_device_cuda(name):
    """'cuda' gives a CUDA device when there is one, else an error suggesting 'auto'."""
    if torch.cuda.is_available():
        assert runtime.get_device(name).type == "cuda"
    else:
        with pytest.raises(ValueError, match="auto") as excinfo:
            runtime.get_device(name)
        assert "no CUDA GPU" in str(excinfo.value)


# --------------------------------------------------------------------------- seeding


def _draws() -> tuple[torch.Tensor, np.ndarray, float]:
    return torch.randn(5), np.random.rand(5), random.random()


def test_seed_everything_repeats_draws():
    """Seeding twice with the same seed gives the same torch, NumPy and Python draws."""
    runtime.seed_everything(123)
    t1, n1, r1 = _draws()
    runtime.seed_everything(123)
    t2, n2, r2 = _draws()
    assert torch.equal(t1, t2)
    assert np.array_equal(n1, n2)
    assert r1 == r2


def test_seed_everything_different_seeds_differ():
    """Different seeds give different draws in every library."""
    runtime.seed_everything(1)
    t1, n1, r1 = _draws()
    runtime.seed_everything(2)
    t2, n2, r2 = _draws()
    assert not torch.equal(t1, t2)
    assert not np.array_equal(n1, n2)
    assert r1 != r2


def test_seed_everything_returns_seeded_generator():
    """The returned generator is a fresh CPU generator seeded with the same seed."""
    g = runtime.seed_everything(7)
    assert isinstance(g, torch.Generator)
    assert g.initial_seed() == 7
    expected = torch.randn(4, generator=torch.Generator().manual_seed(7))
    assert torch.equal(torch.randn(4, generator=g), expected)


def test_seed_everything_large_seed():
    """Seeds beyond 2**32 work (NumPy gets the seed modulo 2**32)."""
    runtime.seed_everything(2**40 + 5)
    n1 = np.random.rand(3)
    runtime.seed_everything(2**40 + 5)
    assert np.array_equal(n1, np.random.rand(3))


@pytest.mark.parametrize("seed", [1.5, True, "0", None])
def test_seed_everything_rejects_non_int(seed):
    """Only a real int is a seed (not a float, a bool, a string or None)."""
    with pytest.raises(TypeError, match="SEED must be an int"):
        runtime.seed_everything(seed)


# --------------------------------------------------------------------------- setup


@pytest.mark.parametrize(("smoke", "word"), [(True, "smoke"), (False, "full")])
def test_setup_prints_one_line(capsys, smoke, word):
    """setup prints one line with the seed, the device and the mode."""
    device = runtime.setup(5, "cpu", smoke=smoke)
    assert device == torch.device("cpu")
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1
    line = lines[0]
    assert "seed 5" in line
    assert "device cpu" in line
    assert word in line
    assert ("smoke" in line) is smoke


def test_setup_without_mode(capsys):
    """Without ``smoke`` the line names no mode."""
    runtime.setup(0, "cpu")
    line = capsys.readouterr().out
    assert "smoke" not in line and "full" not in line


def test_setup_seeds(capsys):
    """setup seeds like seed_everything."""
    runtime.setup(11, "cpu")
    a = torch.randn(3)
    runtime.seed_everything(11)
    assert torch.equal(a, torch.randn(3))


def test_cpu_threads_sets_and_restores_the_thread_count():
    before = torch.get_num_threads()
    with runtime.cpu_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with pytest.raises(RuntimeError), runtime.cpu_threads(1):
        raise RuntimeError("boom")
    assert torch.get_num_threads() == before  # restored after an error too
    with pytest.raises(ValueError, match="positive int"), runtime.cpu_threads(0):
        pass
