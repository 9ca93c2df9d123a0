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


def silence_progress_bars() -> None:
    """No progress bars from the model libraries ("Loading weights", downloads): set before
    they are imported, and switched off in those already imported."""
    import os
    import sys

    os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
    if "huggingface_hub" in sys.modules:
        sys.modules["huggingface_hub"].utils.disable_progress_bars()
    if "transformers" in sys.modules:
        from transformers.utils import logging

        logging.disable_progress_bar()
