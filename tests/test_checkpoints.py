"""Unit tests for the safetensors checkpoint cache (``labs.checkpoints``).

Every test writes into ``tmp_path``; the real cache is never touched.
"""

from __future__ import annotations

import dataclasses
import json
import re
import struct
from pathlib import Path

import pytest
import torch
from torch import nn

from labs import checkpoints
from labs.paths import REPO_ROOT

CONFIG = {"width": 4, "steps": 10, "lr": 0.01}


class Tied(nn.Module):
    """A tiny language-model-like module whose output head shares the embedding matrix."""

    def __init__(self, vocab: int = 7, dim: int = 3) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.head = nn.Linear(dim, vocab, bias=False)
        self.head.weight = self.embed.weight


class Counter:
    """A ``train`` callable that records its calls and sets the weights to known values."""

    def __init__(self, value: float = 0.5) -> None:
        self.calls = 0
        self.value = value

    def __call__(self, model: nn.Module) -> None:
        self.calls += 1
        with torch.no_grad():
            for p in model.parameters():
                p.fill_(self.value)


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _states_equal(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# --------------------------------------------------------------------------- save / load


def test_save_load_round_trip_of_tensor_dict(tmp_path):
    """A dict of tensors saved and loaded again is equal, dtype included."""
    tensors = {"w": torch.randn(3, 4), "ids": torch.arange(5), "mask": torch.tensor([True, False])}
    path = checkpoints.save("round", tensors, CONFIG, directory=tmp_path)
    assert path.parent == tmp_path and path.suffix == ".safetensors"
    loaded = checkpoints.load("round", CONFIG, directory=tmp_path)
    assert loaded is not None
    assert _states_equal(tensors, loaded)
    assert all(loaded[k].dtype == tensors[k].dtype for k in tensors)


def test_load_missing_returns_none_with_reason(tmp_path, capsys):
    """Loading a checkpoint that does not exist returns None and says why."""
    assert checkpoints.load("nothing", CONFIG, directory=tmp_path) is None
    assert "no cached checkpoint" in capsys.readouterr().out


def test_save_non_contiguous_tensor(tmp_path):
    """A non-contiguous tensor (a transpose) is saved by value."""
    t = torch.randn(3, 4).T
    checkpoints.save("nc", {"t": t}, CONFIG, directory=tmp_path)
    assert torch.equal(checkpoints.load("nc", CONFIG, directory=tmp_path)["t"], t)


# --------------------------------------------------------------------------- load_or_train


def test_load_or_train_tied_weights(tmp_path):
    """First call trains and caches; second call loads, keeps the tying, and does not train."""
    torch.manual_seed(0)
    first, train = Tied(), Counter(0.5)
    assert checkpoints.load_or_train("tied", first, CONFIG, train, directory=tmp_path) is False
    assert train.calls == 1

    torch.manual_seed(1)
    second, again = Tied(), Counter(9.0)
    assert not torch.equal(second.embed.weight, first.embed.weight)
    assert checkpoints.load_or_train("tied", second, CONFIG, again, directory=tmp_path) is True
    assert again.calls == 0
    assert _states_equal(_state(first), _state(second))
    assert second.head.weight is second.embed.weight
    assert torch.all(second.embed.weight == 0.5)


def test_load_or_train_retrain_flag(tmp_path):
    """``retrain=True`` trains even when a valid checkpoint exists."""
    checkpoints.load_or_train("m", nn.Linear(2, 2), CONFIG, Counter(), directory=tmp_path)
    train = Counter(2.0)
    model = nn.Linear(2, 2)
    assert (
        checkpoints.load_or_train("m", model, CONFIG, train, directory=tmp_path, retrain=True)
        is False
    )
    assert train.calls == 1
    assert torch.all(checkpoints.load("m", CONFIG, directory=tmp_path)["weight"] == 2.0)


def test_different_configs_do_not_overwrite_each_other(tmp_path):
    """Two configs give two files; each loads its own weights."""
    small, full = {"size": "smoke"}, {"size": "full"}
    w_small, m_small = checkpoints.paths("net", small, tmp_path)
    w_full, m_full = checkpoints.paths("net", full, tmp_path)
    assert w_small != w_full and m_small != m_full
    assert checkpoints.config_hash(small) != checkpoints.config_hash(full)

    checkpoints.load_or_train("net", nn.Linear(2, 2), small, Counter(1.0), directory=tmp_path)
    checkpoints.load_or_train("net", nn.Linear(2, 2), full, Counter(2.0), directory=tmp_path)
    assert len(list(tmp_path.glob("net-*.safetensors"))) == 2
    assert torch.all(checkpoints.load("net", small, directory=tmp_path)["weight"] == 1.0)
    assert torch.all(checkpoints.load("net", full, directory=tmp_path)["weight"] == 2.0)


def test_config_hash_ignores_key_order():
    """The hash is of canonical JSON: key order does not matter."""
    assert checkpoints.config_hash({"a": 1, "b": 2}) == checkpoints.config_hash({"b": 2, "a": 1})
    assert re.fullmatch(r"[0-9a-f]{8}", checkpoints.config_hash({"a": 1}))


@dataclasses.dataclass
class TrainConfig:
    width: int = 4
    steps: int = 10
    lr: float = 0.01


def test_dataclass_config(tmp_path):
    """A dataclass instance works as a config and hashes like the equivalent dict."""
    cfg = TrainConfig()
    assert checkpoints.config_hash(cfg) == checkpoints.config_hash(dataclasses.asdict(cfg))
    checkpoints.load_or_train("dc", nn.Linear(2, 2), cfg, Counter(), directory=tmp_path)
    train = Counter()
    assert checkpoints.load_or_train("dc", nn.Linear(2, 2), cfg, train, directory=tmp_path)
    assert train.calls == 0


@pytest.mark.parametrize(
    "config",
    [{"fn": print}, {"tensor": torch.zeros(1)}, {"set": {1, 2}}, ["not", "a", "mapping"], 3],
    ids=["function", "tensor", "set", "list", "int"],
)
def test_non_json_config_raises_type_error(config, tmp_path):
    """Configs that are not JSON dicts are rejected with a TypeError."""
    with pytest.raises(TypeError, match="config"):
        checkpoints.save("bad", {"w": torch.zeros(1)}, config, directory=tmp_path)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["a/b", "../escape", "", ".hidden", "has space", "x\\y"])
def test_invalid_name_raises_value_error(name, tmp_path):
    """Names with slashes, spaces or a leading dot are rejected."""
    with pytest.raises(ValueError, match="name"):
        checkpoints.paths(name, CONFIG, tmp_path)


def test_name_with_trailing_newline_is_rejected(tmp_path):
    """The name check covers the whole string: a trailing newline is not a valid character."""
    with pytest.raises(ValueError, match="name"):
        checkpoints.paths("model\n", CONFIG, tmp_path)


# --------------------------------------------------------------------------- damaged caches


def _saved(tmp_path: Path, name: str = "m") -> tuple[Path, Path]:
    torch.manual_seed(0)
    checkpoints.load_or_train(name, nn.Linear(3, 4), CONFIG, Counter(0.25), directory=tmp_path)
    return checkpoints.paths(name, CONFIG, tmp_path)


def _retrains(tmp_path: Path, name: str = "m") -> bool:
    train = Counter(0.75)
    model = nn.Linear(3, 4)
    from_cache = checkpoints.load_or_train(name, model, CONFIG, train, directory=tmp_path)
    assert from_cache is (train.calls == 0)
    return train.calls == 1 and torch.all(model.weight == 0.75).item()


def test_valid_checkpoint_validates(tmp_path):
    """An untouched checkpoint validates as ok."""
    weights, _ = _saved(tmp_path)
    assert checkpoints.validate("m", CONFIG, tmp_path) == (weights, "ok")
    assert not _retrains(tmp_path)


def test_tampered_weights_fail_sha256_and_retrain(tmp_path, capsys):
    """Flipping one byte of the weights fails the sha256 check, and the model is retrained."""
    weights, _ = _saved(tmp_path)
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    path, reason = checkpoints.validate("m", CONFIG, tmp_path)
    assert path is None
    assert "sha256" in reason
    assert _retrains(tmp_path)
    assert "sha256" in capsys.readouterr().out
    assert checkpoints.validate("m", CONFIG, tmp_path)[1] == "ok"  # the retrain re-cached it


def test_truncated_weights_retrain(tmp_path):
    """A truncated weights file is retrained."""
    weights, _ = _saved(tmp_path)
    weights.write_bytes(weights.read_bytes()[:20])
    assert _retrains(tmp_path)


@pytest.mark.parametrize(
    "content",
    [b'{"format": "aigc-lab-checkpoint/1", "sha', b"\xff\xfe\x00garbage", b"[1, 2, 3]", b""],
    ids=["truncated", "binary", "json-list", "empty"],
)
def test_broken_manifest_retrains(tmp_path, content):
    """A truncated, garbage or non-object manifest means: train again."""
    _, manifest = _saved(tmp_path)
    manifest.write_bytes(content)
    assert checkpoints.validate("m", CONFIG, tmp_path)[0] is None
    assert _retrains(tmp_path)


def test_manifest_with_other_config_retrains(tmp_path):
    """A manifest whose recorded config differs from the requested one is not trusted."""
    _, manifest = _saved(tmp_path)
    data = json.loads(manifest.read_text())
    data["config"] = dict(CONFIG, steps=999)
    manifest.write_text(json.dumps(data))
    path, reason = checkpoints.validate("m", CONFIG, tmp_path)
    assert path is None and "different config" in reason
    assert _retrains(tmp_path)


def test_corrupt_safetensors_with_matching_sha_retrains(tmp_path):
    """Garbage weights whose sha256 was (re)recorded in the manifest still retrain, not crash."""
    weights, manifest = _saved(tmp_path)
    weights.write_bytes(b"\x00" * 64)
    data = json.loads(manifest.read_text())
    data["sha256"] = checkpoints.sha256_file(weights)
    manifest.write_text(json.dumps(data))
    assert checkpoints.validate("m", CONFIG, tmp_path)[1] == "ok"
    assert checkpoints.load("m", CONFIG, directory=tmp_path) is None
    assert _retrains(tmp_path)


@pytest.mark.parametrize(
    "other",
    [
        lambda: nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 5)),  # same keys, a different shape
        lambda: nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2), nn.Linear(2, 2)),  # extra keys
    ],
    ids=["shape-mismatch", "missing-keys"],
)
def test_checkpoint_that_does_not_fit_is_rolled_back_and_retrained(tmp_path, other):
    """A checkpoint for another architecture leaves the model as it was, then trains it."""
    saved = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 2))
    checkpoints.save("arch", saved, CONFIG, directory=tmp_path)

    torch.manual_seed(123)
    model = other()
    initial = _state(model)
    # the first layer fits, so a partial load would copy it in before failing
    assert not torch.equal(initial["0.weight"], saved[0].weight)
    seen = {}

    def train(m):
        seen["untouched"] = _states_equal(initial, _state(m))
        Counter(0.0)(m)

    assert checkpoints.load_or_train("arch", model, CONFIG, train, directory=tmp_path) is False
    assert seen == {"untouched": True}


def test_no_leftover_tmp_files(tmp_path):
    """Atomic writes leave only the weights and the manifest behind."""
    checkpoints.save("clean", nn.Linear(2, 2), CONFIG, directory=tmp_path)
    checkpoints.save("clean", {"w": torch.zeros(2)}, CONFIG, directory=tmp_path)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert not [n for n in names if n.endswith(".tmp")]
    stem = f"clean-{checkpoints.config_hash(CONFIG)}"
    assert names == [f"{stem}.json", f"{stem}.safetensors"]


def test_failed_save_keeps_the_old_checkpoint_and_no_tmp_file(tmp_path, monkeypatch):
    """A save that dies half-way leaves the previous checkpoint intact and no temporary file."""
    checkpoints.save("atomic", {"w": torch.ones(2)}, CONFIG, directory=tmp_path)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}

    def dies_half_way(tensors, filename):
        Path(filename).write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoints, "save_file", dies_half_way)
    with pytest.raises(OSError, match="disk full"):
        checkpoints.save("atomic", {"w": torch.zeros(2)}, CONFIG, directory=tmp_path)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    monkeypatch.undo()
    assert torch.equal(checkpoints.load("atomic", CONFIG, directory=tmp_path)["w"], torch.ones(2))


# --------------------------------------------------------------------------- file formats


def test_manifest_contents(tmp_path):
    """The manifest records format, sha256 of the weights, config, how and creation time."""
    weights = checkpoints.save("man", nn.Linear(2, 2), CONFIG, how="unit test", directory=tmp_path)
    _, manifest_path = checkpoints.paths("man", CONFIG, tmp_path)
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    assert manifest["format"] == checkpoints.FORMAT
    assert manifest["sha256"] == checkpoints.sha256_file(weights)
    assert re.fullmatch(r"[0-9a-f]{64}", manifest["sha256"])
    assert manifest["config"] == CONFIG
    assert manifest["how"] == "unit test"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", manifest["created_utc"])
    assert manifest["bytes"] == weights.stat().st_size


def test_weights_file_is_safetensors_not_pickle(tmp_path):
    """The weights start with an 8-byte little-endian header length, then a JSON header."""
    weights = checkpoints.save("fmt", nn.Linear(2, 3), CONFIG, directory=tmp_path)
    data = weights.read_bytes()
    assert not data.startswith(b"\x80")  # pickle protocol marker
    assert not data.startswith(b"PK")  # torch.save zip archive
    (header_len,) = struct.unpack("<Q", data[:8])
    assert 0 < header_len < len(data)
    assert data[8:9] == b"{"
    header = json.loads(data[8 : 8 + header_len])
    assert set(header) - {"__metadata__"} == {"weight", "bias"}
    assert header["weight"]["shape"] == [3, 2]


def test_default_directory_follows_env(tmp_path, monkeypatch):
    """Without ``directory`` the cache is $AIGC_LAB_CACHE."""
    monkeypatch.setenv("AIGC_LAB_CACHE", str(tmp_path / "cache"))
    weights, manifest = checkpoints.paths("env", CONFIG)
    assert weights.parent == manifest.parent == tmp_path / "cache"


def test_labs_never_unpickles():
    """No module in labs/ uses torch.load or pickle (checkpoints are safetensors only)."""
    offenders = []
    for path in sorted((REPO_ROOT / "labs").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        for needle in ("torch.load(", "import pickle", "pickle.load"):
            if needle in text:
                offenders.append(f"{path.relative_to(REPO_ROOT)}: {needle}")
    assert offenders == []
