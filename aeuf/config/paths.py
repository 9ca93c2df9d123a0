"""Where aeuf keeps what every run shares (the feature cache, JAX's compiled programs)."""

from __future__ import annotations

import os
from pathlib import Path


def cache_home(*parts: str) -> Path:
    """$XDG_CACHE_HOME/aeuf/<parts> (or ~/.cache/aeuf/<parts> when it is unset or empty)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base, "aeuf", *parts)
