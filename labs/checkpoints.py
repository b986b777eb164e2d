"""The checkpoint cache: train once, reuse in later lessons.

A checkpoint is two files in the cache directory (``data/cache/`` unless
``$AIGC_LAB_CACHE`` says otherwise)::

    gpt_char-1a2b3c4d.safetensors   the weights (safetensors: no pickle, safe to load)
    gpt_char-1a2b3c4d.json          the manifest: config, sha256, how it was made

The suffix is a hash of the config, so a smoke-sized and a full-sized model never
overwrite each other. Files are written atomically (temporary file, then rename).
A missing, truncated, tampered or mismatched checkpoint is never an error: it means
"train it", and the reason is printed.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import re
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, load_model, save_file, save_model
from torch import nn

import labs
from labs.paths import cache_dir

FORMAT = "aigc-lab-checkpoint/1"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


def _config_dict(config: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        config = dataclasses.asdict(config)
    if not isinstance(config, Mapping):
        raise TypeError(
            f"config must be a dict or a dataclass instance, got {type(config).__name__}"
        )
    try:
        return json.loads(json.dumps(dict(config), sort_keys=True))
    except TypeError as exc:
        raise TypeError(
            f"config must hold JSON values only (numbers, strings, lists, dicts): {exc}"
        ) from None


def config_hash(config: Any) -> str:
    """First 8 hex digits of the sha256 of the config's canonical JSON."""
    text = json.dumps(_config_dict(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:8]


def paths(name: str, config: Any, directory: Path | str | None = None) -> tuple[Path, Path]:
    """``(weights, manifest)`` paths for a named checkpoint of this config."""
    if not _NAME.fullmatch(name):
        raise ValueError(
            f"checkpoint name {name!r} must be letters, digits, '_', '.', '-' (no slashes)"
        )
    root = Path(directory) if directory is not None else cache_dir()
    stem = f"{name}-{config_hash(config)}"
    return root / f"{stem}.safetensors", root / f"{stem}.json"


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Write ``path`` all at once: ``write(tmp)`` fills a temporary file in the same folder,
    which then replaces ``path`` (readers never see half a file; a crash leaves the old one)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o644)  # mkstemp creates files readable by their owner only
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save(
    name: str,
    weights: nn.Module | Mapping[str, torch.Tensor],
    config: Any,
    *,
    how: str = "",
    directory: Path | str | None = None,
) -> Path:
    """Save a module (or a dict of tensors) with its manifest; return the weights path.

    ``how`` tells a reader how to regenerate it (e.g. "lesson 03, full mode, 3000 steps").
    """
    weights_path, manifest_path = paths(name, config, directory)
    if isinstance(weights, nn.Module):
        module = weights
        atomic_write(weights_path, lambda p: save_model(module, str(p)))
    else:
        tensors = {k: v.detach().cpu().contiguous().clone() for k, v in weights.items()}
        atomic_write(weights_path, lambda p: save_file(tensors, str(p)))
    manifest = {
        "format": FORMAT,
        "name": name,
        "config": _config_dict(config),
        "sha256": sha256_file(weights_path),
        "bytes": weights_path.stat().st_size,
        "how": how,
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "torch": torch.__version__,
        "labs": labs.__version__,
    }
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    atomic_write(manifest_path, lambda p: p.write_text(text, encoding="utf-8"))
    return weights_path


def validate(
    name: str, config: Any, directory: Path | str | None = None
) -> tuple[Path | None, str]:
    """``(weights_path, "ok")`` when a valid checkpoint exists, else ``(None, reason)``."""
    weights_path, manifest_path = paths(name, config, directory)
    if not weights_path.exists() or not manifest_path.exists():
        return None, "no cached checkpoint"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return None, "its manifest is unreadable"
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        return None, "its manifest is not an AIGC Lab checkpoint manifest"
    if manifest.get("config") != _config_dict(config):
        return None, "it was made with a different config"
    if manifest.get("sha256") != sha256_file(weights_path):
        return None, "its weights do not match the manifest's sha256 (changed or truncated)"
    return weights_path, "ok"


def load(
    name: str, config: Any, directory: Path | str | None = None
) -> dict[str, torch.Tensor] | None:
    """The cached tensors for this name and config, or ``None`` (with the reason printed)."""
    weights_path, reason = validate(name, config, directory)
    if weights_path is None:
        print(f"checkpoint {name!r}: {reason}.")
        return None
    try:
        return load_file(str(weights_path))
    except (SafetensorError, OSError, ValueError) as exc:
        print(f"checkpoint {name!r}: unreadable safetensors file ({exc}).")
        return None


def load_or_train(
    name: str,
    model: nn.Module,
    config: Any,
    train: Callable[[nn.Module], Any],
    *,
    how: str = "",
    directory: Path | str | None = None,
    retrain: bool = False,
) -> bool:
    """Fill ``model`` from the cache if a valid checkpoint exists, else train and cache it.

    Returns ``True`` when the weights came from the cache. ``train(model)`` trains in
    place. A checkpoint that does not fit the model (other shapes) is retrained.
    """
    weights_path, reason = (None, "retrain=True") if retrain else validate(name, config, directory)
    if weights_path is not None:
        initial = {k: v.detach().clone() for k, v in model.state_dict().items()}
        try:
            load_model(model, str(weights_path), strict=True)
        except (SafetensorError, RuntimeError, OSError, ValueError) as exc:
            model.load_state_dict(initial)  # a failed load may have copied some tensors
            detail = " ".join(str(exc).split())
            reason = f"it does not fit this model ({detail[:300]})"
        else:
            print(
                f"checkpoint {name!r}: loaded {weights_path.name} from the cache (delete it to retrain)."
            )
            return True
    print(f"checkpoint {name!r}: {reason}; training it now.")
    train(model)
    path = save(name, model, config, how=how, directory=directory)
    print(f"checkpoint {name!r}: saved {path.name}.")
    return False
