"""Where the course keeps its files. Notebooks never rely on their working directory."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = REPO_ROOT / "data"
SOLUTIONS_DIR = REPO_ROOT / "solutions"
NOTEBOOKS_DIR = REPO_ROOT / "notebooks"
REQUIREMENTS_FILE = REPO_ROOT / "requirements.txt"

CACHE_ENV = "AIGC_LAB_CACHE"


def cache_dir() -> Path:
    """The checkpoint cache: ``$AIGC_LAB_CACHE`` if set, else ``data/cache/`` (git-ignored)."""
    return Path(os.environ.get(CACHE_ENV) or DATA_DIR / "cache")
