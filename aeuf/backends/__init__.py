"""Back-ends: the only modules that import torch, transformers, sentence_transformers,
openai, vllm or ray. Each is imported lazily by name, with an install hint when missing."""

from __future__ import annotations

import importlib
from types import ModuleType

from aeuf.errors import MissingExtra


def require(module: str, extra: str | None = None, package: str | None = None) -> ModuleType:
    """Import `module`, or raise MissingExtra with the pip command that provides it."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        what = f"aeuf[{extra}]" if extra else (package or module)
        raise MissingExtra(f"{module} is not installed ({err}); install it with: pip install '{what}'") from None
