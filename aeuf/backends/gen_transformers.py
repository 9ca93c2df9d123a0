"""The `transformers` generation back-end: batched `model.generate` on CPU or one GPU.

Requests are grouped by sampling parameters (one `generate` call takes one setting), sorted
by prompt length to limit padding, and cut into batches of `cfg.batch_size`. Torch's sampler
is seeded per batch from the batch's request seeds, so the same plan gives the same text.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from itertools import groupby

from aeuf.backends import hf_models, require
from aeuf.config import GenerateConfig
from aeuf.types import Generation, GenRequest


def _setting(r: GenRequest) -> tuple:
    return (r.temperature, r.top_p, r.max_tokens)


def batches(requests: Sequence[GenRequest], batch_size: int, length) -> list[list[GenRequest]]:
    """Requests cut into batches of one sampling setting each, shortest prompts first.

    length: GenRequest -> prompt length used for sorting (e.g. tokens after the template).
    """
    ordered = sorted(requests, key=lambda r: (_setting(r), length(r)))
    out = []
    for _, group in groupby(ordered, key=_setting):
        group = list(group)
        out += [group[i : i + batch_size] for i in range(0, len(group), batch_size)]
    return out


class TransformersBackend:
    """Generation with a transformers causal LM (hub id, folder, .gguf or 'smollm2')."""

    def __init__(self, cfg: GenerateConfig) -> None:
        self.batch_size = max(1, int(cfg.batch_size))
        self.torch = require("torch")

    def generate(self, path: str, requests: Sequence[GenRequest]) -> Iterator[Generation]:
        """Yield one Generation per request, batch by batch."""
        tok, model = hf_models.load(path)
        texts = {r.key: hf_models.chat_text(tok, r.prompt) for r in requests}
        for batch in batches(requests, self.batch_size, lambda r: len(texts[r.key])):
            yield from self._run(tok, model, batch, [texts[r.key] for r in batch])

    def _run(self, tok, model, batch: list[GenRequest], texts: list[str]) -> list[Generation]:
        torch = self.torch
        enc = _encode_left(tok, texts).to(model.device)
        torch.manual_seed(sum(r.seed for r in batch) % (2**31))
        r0 = batch[0]
        sample = r0.temperature > 0
        with torch.inference_mode():
            out = model.generate(
                **enc, max_new_tokens=r0.max_tokens, do_sample=sample,
                temperature=r0.temperature if sample else None,
                top_p=r0.top_p if sample else None, top_k=None,
                pad_token_id=tok.pad_token_id,
            )
        new = out[:, enc["input_ids"].shape[1] :].tolist()
        lens = enc["attention_mask"].sum(dim=1).tolist()
        stops = _stop_ids(tok, model)
        return [_result(tok, r, ids, n, stops) for r, ids, n in zip(batch, new, lens, strict=True)]

    def close(self) -> None:
        """Keep the model: hf_models holds one model per process and frees it when the next
        one (for generation or hidden-state features) is loaded."""


def _encode_left(tok, texts: list[str]):
    """Left-padded batch encoding (generation continues every row from its last column)."""
    side = tok.padding_side
    tok.padding_side = "left"
    try:
        return tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    finally:
        tok.padding_side = side


def _stop_ids(tok, model) -> set[int]:
    eos = model.generation_config.eos_token_id
    ids = set(eos if isinstance(eos, list) else [eos]) | {tok.eos_token_id}
    return {i for i in ids if i is not None}


def _result(tok, r: GenRequest, ids: list[int], prompt_len: int, stops: set[int]) -> Generation:
    """Cut at the first stop token; count the tokens actually generated."""
    end = next((i for i, t in enumerate(ids) if t in stops), None)
    kept = ids if end is None else ids[:end]
    text = tok.decode(kept, skip_special_tokens=True).strip()
    n = len(ids) if end is None else end + 1
    return Generation(r.key, text, int(prompt_len), n, "length" if end is None else "stop")
