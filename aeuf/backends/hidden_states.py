"""Frozen-LLM features (BAL-PM): a causal LM's last-layer hidden state at the last non-pad
token of each text, float32, batched.

`model` names the engine with an optional prefix: `vllm:<model>` uses vLLM's pooling runner
(LAST-token pooling, not normalised) on the GPU; `ray:<model>` runs the engine named by the
rest on Ray Data replicas (aeuf.backends.ray_runner); anything else (hub id, folder, .gguf file,
the alias `smollm2` for the packaged SmolLM2 GGUF) runs in transformers on CPU or GPU.
Texts are truncated from the left to `max_length` tokens so the last token is always the
text's own last token. Features from either engine have the same meaning; they differ only
by the engines' numerics.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Sequence

import numpy as np

from aeuf.backends import hf_models, ray_runner, require
from aeuf.registry import Registry

Engine = Callable[[list[str], str, int, int], np.ndarray]
ENGINES: Registry[Engine] = Registry("hidden-state engine")


def split_engine(model: str) -> tuple[str, str]:
    """'vllm:name' -> ('vllm', 'name'); 'name' -> ('transformers', 'name')."""
    head, sep, rest = model.partition(":")
    if sep and head in ENGINES:
        return head, rest
    return "transformers", model


def encode(texts: list[str], model: str, *, batch_size: int = 32, max_length: int = 256) -> np.ndarray:
    """Features of N texts -> f32[N, H] (H = the model's hidden size)."""
    engine, path = split_engine(model)
    if not texts:
        return np.zeros((0, 0), np.float32)
    return ENGINES.get(engine)(list(texts), path, max(1, batch_size), max_length)


def format_pairs(prompts: Sequence[str], responses: Sequence[str], model: str) -> list[str]:
    """Prompt + response in the model's chat template (user turn, assistant turn): N texts."""
    _, path = split_engine(model)
    tok = hf_models.load_tokenizer(path)
    return [hf_models.chat_text(tok, p, r) for p, r in zip(prompts, responses, strict=True)]


def encode_pairs(prompts: Sequence[str], responses: Sequence[str], model: str, *,
                 batch_size: int = 32, max_length: int = 256) -> np.ndarray:
    """BAL-PM features of N (prompt, response) pairs in the chat format -> f32[N, H]."""
    texts = format_pairs(prompts, responses, model)
    return encode(texts, model, batch_size=batch_size, max_length=max_length)


def last_index(mask) -> object:
    """[B, T] 0/1 attention mask -> [B] index of each row's last 1 (any padding side)."""
    T = mask.shape[1]
    return T - 1 - mask.flip(dims=[1]).argmax(dim=1)


@ENGINES.register("transformers")
def _transformers(texts: list[str], path: str, batch_size: int, max_length: int) -> np.ndarray:
    torch = require("torch")
    tok, lm = hf_models.load(path)
    body = lm.base_model  # the decoder without the LM head: no [B, T, vocab] logits
    order = np.argsort([len(t) for t in texts], kind="stable")
    out = np.empty((len(texts), lm.config.hidden_size), np.float32)
    for start in range(0, len(texts), batch_size):
        idx = order[start : start + batch_size]
        enc = _encode_right(tok, [texts[i] for i in idx], max_length).to(lm.device)
        with torch.inference_mode():
            hidden = body(**enc).last_hidden_state  # [B, T, H], final norm applied
        rows = torch.arange(hidden.shape[0], device=hidden.device)
        out[idx] = hidden[rows, last_index(enc["attention_mask"])].float().cpu().numpy()
    return out


def _encode_right(tok, texts: list[str], max_length: int):
    """Right-padded, left-truncated batch encoding."""
    side = tok.truncation_side
    tok.truncation_side = "left"
    try:
        return tok(texts, return_tensors="pt", padding=True, truncation=True, max_length=max_length)
    finally:
        tok.truncation_side = side


@ENGINES.register("vllm")
def _vllm(texts: list[str], path: str, batch_size: int, max_length: int) -> np.ndarray:
    llm = _vllm_pooler(path, max_length)
    kw = {"use_tqdm": False}
    if "truncate_prompt_tokens" in inspect.signature(llm.embed).parameters:
        kw["truncate_prompt_tokens"] = max_length
    outs = llm.embed(texts, **kw)
    return np.asarray([o.outputs.embedding for o in outs], np.float32)


@ENGINES.register("ray")
def _ray(texts: list[str], path: str, batch_size: int, max_length: int) -> np.ndarray:
    """`ray:<model>`: the transformers (or `ray:vllm:<model>`) engine on Ray Data replicas."""
    return encode_on_ray(texts, path, batch_size=batch_size, max_length=max_length)


class FeatureWorker:
    """One engine replica in a Ray actor: {i, text} batches -> {i, x f32[b, H]}."""

    def __init__(self, model: str, batch_size: int, max_length: int) -> None:
        self.args = (model, batch_size, max_length)

    def __call__(self, batch: dict) -> dict:
        model, bs, ml = self.args
        return {"i": batch["i"], "x": encode(list(batch["text"]), model, batch_size=bs, max_length=ml)}


def encode_on_ray(texts: list[str], model: str, *, batch_size: int = 32, max_length: int = 256,
                  replicas: int | None = None, address: str | None = None) -> np.ndarray:
    """Features of N texts over Ray replicas (`ray_runner.fan_out`) -> f32[N, H] in input order."""
    if not texts:
        return np.zeros((0, 0), np.float32)
    rows = [{"i": i, "text": t} for i, t in enumerate(texts)]
    init = {"model": model, "batch_size": batch_size, "max_length": max_length}
    parts = list(ray_runner.fan_out(FeatureWorker, rows, init=init, batch_size=batch_size,
                                    num_replicas=replicas, address=address))
    idx = np.concatenate([p["i"] for p in parts])
    feats = np.concatenate([np.asarray(p["x"], np.float32) for p in parts])
    out = np.empty_like(feats)
    out[idx] = feats
    return out


def vllm_pooler_kwargs(vllm_module, path: str, max_length: int) -> dict:
    """LLM(...) keyword arguments for LAST-token, unnormalised pooling of `path`.

    Adapts to the installed vLLM: `runner`/`convert` (>= 0.10) or `task`, and
    `pooler_config` or the older `override_pooler_config`.
    """
    engine = {f.name for f in dataclasses.fields(vllm_module.EngineArgs)}
    cls = vllm_module.config.PoolerConfig
    wanted = {"pooling_type": "LAST", "normalize": False}
    pooler = cls(**{k: v for k, v in wanted.items() if k in {f.name for f in dataclasses.fields(cls)}})
    kw = {"model": path, "max_model_len": max(max_length, 512)}
    kw["pooler_config" if "pooler_config" in engine else "override_pooler_config"] = pooler
    kw.update({"runner": "pooling", "convert": "embed"} if "runner" in engine else {"task": "embed"})
    return kw


_VLLM: dict[str, object] = {}


def _vllm_pooler(path: str, max_length: int):
    """One vLLM pooling engine, kept across calls for the same model."""
    if path not in _VLLM:
        vllm = require("vllm", extra="gpu")
        _VLLM.clear()
        _VLLM[path] = vllm.LLM(**vllm_pooler_kwargs(vllm, hf_models.vllm_path(path), max_length))
    return _VLLM[path]

