"""Reward models in transformers: sequence-classification heads that score a (prompt, response).

Two input conventions are in use, and `convention(tok)` picks one from the tokenizer:
- `chat`: the conversation (user turn, assistant turn) in the model's chat template, one text
  (Skywork-Reward-V2, ArmoRM, most decoder reward models);
- `pair`: the prompt and the response as a text pair, `tok(prompt, response)`
  (the OpenAssistant DeBERTa reward models, cross-encoders).

`score(...)` -> f32[N, A]: the head's logits, A = num_labels (1 for a single reward; an
ArmoRM-style multi-head model has one column per aspect). `hidden(...)` -> f32[N, H]: the
representation the reward head reads (the last hidden state at the pooled token), the
`--features rm` part. Inputs over `max_length` tokens lose their response's middle, replaced by
the judge's visible cut marker, so the head and tail of every response are always scored.
Batches are formed by token length (sorted), on the GPU when there is one, float32 on CPU.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np

from aeuf.backends import hf_models, require

CONVENTIONS = ("chat", "pair")


@lru_cache(maxsize=1)
def load(path: str):
    """(tokenizer, model) of a sequence-classification reward model, in eval mode on
    `hf_models.device()`; float32 on CPU, bfloat16 on GPU. The tokenizer pads on the right."""
    transformers = require("transformers")
    torch = require("torch")
    folder, kw = hf_models._source(path)
    dtype = torch.float32 if hf_models.device() == "cpu" else torch.bfloat16
    model = hf_models._loading(path, lambda: transformers.AutoModelForSequenceClassification
                               .from_pretrained(folder, dtype=dtype, **kw))
    tok = hf_models._loading(path, lambda: transformers.AutoTokenizer.from_pretrained(folder, **kw))
    if tok.pad_token_id is None:
        tok.pad_token = tok.eos_token
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tok.pad_token_id  # batched scoring finds each row's last token
    tok.padding_side = "right"
    return tok, model.to(hf_models.device()).eval()


def revision(path: str) -> str:
    """What names this model's weights in a request key: the hub commit when the config has one,
    else a digest of its config.json (a local folder), else the path itself."""
    folder, _ = hf_models.resolve(path)
    config = Path(folder) / "config.json"
    if config.is_file():
        blob = config.read_bytes()
        weights = sorted(p.name + str(p.stat().st_size) for p in Path(folder).glob("*.safetensors"))
        return hashlib.sha256(blob + json.dumps(weights).encode()).hexdigest()[:16]
    return path


def convention(tok, wanted: str = "auto") -> str:
    """`chat` when the tokenizer has a chat template (or `wanted` says so), else `pair`."""
    if wanted in CONVENTIONS:
        return wanted
    return "chat" if getattr(tok, "chat_template", None) else "pair"


def aspects(path: str) -> tuple[str, ...]:
    """The head's output names: ('reward',) for one label, else the config's id2label values."""
    _, model = load(path)
    n = int(model.config.num_labels)
    if n == 1:
        return ("reward",)
    labels = getattr(model.config, "id2label", None) or {}
    return tuple(str(labels.get(i, f"aspect_{i}")) for i in range(n))


def encode_one(tok, prompt: str, response: str, conv: str, max_length: int,
               marker: str) -> dict[str, list[int]]:
    """The encoding (input_ids, and token_type_ids where the tokenizer makes them) of one
    (prompt, response), at most `max_length` tokens: an over-long response keeps its head and
    tail around `marker` (a format string with {n}, the characters cut)."""
    enc = _enc(tok, prompt, response, conv)
    ids = enc["input_ids"]
    if len(ids) <= max_length:
        return enc
    resp = tok(response, add_special_tokens=False)["input_ids"]
    room = len(resp) - (len(ids) - max_length) - len(_plain(tok, marker.format(n=len(response))))
    head, tail = _plain_decode(tok, resp[: max(0, room) // 2 + max(0, room) % 2]), \
        _plain_decode(tok, resp[len(resp) - max(0, room) // 2:] if room >= 2 else [])
    cut = head + marker.format(n=max(0, len(response) - len(head) - len(tail))) + tail
    return {k: v[:max_length] for k, v in _enc(tok, prompt, cut, conv).items()}


def _plain(tok, text: str) -> list[int]:
    return tok(text, add_special_tokens=False)["input_ids"]


def _plain_decode(tok, ids: list[int]) -> str:
    return tok.decode(ids, skip_special_tokens=True) if ids else ""


def _enc(tok, prompt: str, response: str, conv: str) -> dict[str, list[int]]:
    if conv == "chat":
        return {"input_ids": _plain(tok, hf_models.chat_text(tok, prompt, response))}
    enc = tok(prompt, response, truncation=False)
    return {k: list(enc[k]) for k in ("input_ids", "token_type_ids") if k in enc}


def batches(lengths: Sequence[int], batch_size: int) -> list[np.ndarray]:
    """Index batches of at most `batch_size`, formed over the inputs sorted by token length
    (little padding); their union is every index once."""
    order = np.argsort(np.asarray(lengths), kind="stable")
    return [order[i:i + batch_size] for i in range(0, len(order), max(1, batch_size))]


ENCODERS = ("bert", "deberta", "deberta-v2", "roberta", "xlm-roberta", "distilbert", "electra")


def pooled_index(model, input_ids, mask):
    """[B] the token whose hidden state the reward head reads: the first ([CLS]) for encoder
    classifiers, else the last token that is not padding (as transformers' decoder heads do)."""
    torch = require("torch")
    if getattr(model.config, "model_type", "") in ENCODERS:
        return torch.zeros(input_ids.shape[0], dtype=torch.long, device=input_ids.device)
    pad = model.config.pad_token_id
    real = mask.bool() if pad is None else (input_ids != pad) & mask.bool()
    positions = torch.arange(input_ids.shape[1], device=input_ids.device)
    return (positions * real).argmax(dim=1)


def _forward(model, tok, rows: list[dict], *, hidden: bool):
    torch = require("torch")
    enc = tok.pad(rows, return_tensors="pt").to(model.device)
    with torch.inference_mode():
        out = model(**enc, output_hidden_states=hidden)
    if not hidden:
        return out.logits.float().cpu().numpy()
    at = pooled_index(model, enc["input_ids"], enc["attention_mask"])
    last = out.hidden_states[-1]
    return last[torch.arange(len(rows), device=last.device), at].float().cpu().numpy()


def run(prompts: Sequence[str], responses: Sequence[str], path: str, *, conv: str = "auto",
        batch_size: int = 16, max_length: int = 2048, marker: str = "[... {n} characters cut ...]",
        hidden: bool = False) -> np.ndarray:
    """Scores f32[N, A] (or, with hidden=True, representations f32[N, H]) of N pairs."""
    tok, model = load(path)
    conv = convention(tok, conv)
    rows = [encode_one(tok, p, r, conv, max_length, marker) for p, r in zip(prompts, responses,
                                                                           strict=True)]
    width = model.config.hidden_size if hidden else int(model.config.num_labels)
    out = np.zeros((len(rows), width), np.float32)
    for idx in batches([len(r["input_ids"]) for r in rows], batch_size):
        out[idx] = _forward(model, tok, [rows[i] for i in idx], hidden=hidden)
    return out
