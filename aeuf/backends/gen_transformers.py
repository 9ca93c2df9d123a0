"""The `transformers` generation back-end: a batched decoding loop on CPU or one GPU.

Requests are grouped by sampling parameters, sorted by prompt length to limit padding, and cut
into batches of `cfg.batch_size`. Each batch runs one KV-cached decoding loop (`decode`):

- every row samples with its OWN torch.Generator seeded by its request's seed (Gumbel-max
  over the top-p nucleus, `sample`), so a response depends on its request only, not on the
  batch it shares: batch size 1 and batch size 16 give the same text (up to float noise in
  the logits, which moves a token only when two perturbed scores lie within that noise);
- a row leaves the batch the step it finishes (stop token or its max_tokens) and its
  Generation is yielded at once, so the caller stores it while the others keep decoding.
"""

from __future__ import annotations

import inspect
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

    def check(self, path: str) -> None:
        """ConfigError (one line) unless `path` can be loaded here."""
        hf_models.check(path)

    def generate(self, path: str, requests: Sequence[GenRequest]) -> Iterator[Generation]:
        """Yield one Generation per request, each as soon as its row finishes."""
        tok, model = hf_models.load(path)
        texts = {r.key: hf_models.chat_text(tok, r.prompt) for r in requests}
        stops = _stop_ids(tok, model)
        for batch in batches(requests, self.batch_size, lambda r: len(texts[r.key])):
            enc = _encode_left(tok, [texts[r.key] for r in batch]).to(model.device)
            lens = enc["attention_mask"].sum(dim=1).tolist()
            for i, ids in decode(self.torch, model, enc, batch, stops):
                yield _result(tok, batch[i], ids, lens[i], stops)

    def close(self) -> None:
        """Keep the model: hf_models holds one model per process and frees it when the next
        one (for generation or hidden-state features) is loaded."""


def sample(torch, logits, temperature, top_p, uniform):
    """One token per row: logits f32[B, V], temperature f32[B] (0 = greedy), top_p f32[B],
    uniform f32[B, V] in [0, 1) (each row's draws from that row's own generator) -> i64[B].

    Gumbel-max over the nucleus (the most probable tokens, at `temperature`, whose mass before
    them is below top_p; at least one): argmax of logits / T + Gumbel(uniform). This is an
    exact sample of the renormalised nucleus, and it is robust to float noise in the logits
    (what another batch size brings): a sample moves only when the two best perturbed scores
    lie within that noise, or when a token whose nucleus membership flips is the winner. An
    inverse-CDF sampler would move whenever near-equal tokens swap places or the kept mass
    changes. Row i depends on row i's inputs only.
    """
    greedy = logits.argmax(dim=-1)
    if not bool((temperature > 0).any()):
        return greedy
    scaled = logits / temperature.clamp_min(1e-6)[:, None]
    probs = torch.softmax(scaled, dim=-1)
    keep = probs >= nucleus_floor(torch, probs, top_p)
    gumbel = -torch.log(-torch.log(uniform.clamp_min(torch.finfo(uniform.dtype).tiny)))
    score = torch.where(keep, scaled + gumbel, torch.full_like(scaled, -torch.inf))
    return torch.where(temperature > 0, score.argmax(dim=-1), greedy)


def nucleus_floor(torch, probs, top_p, k: int = 64):
    """The smallest probability in each row's nucleus: probs f32[B, V], top_p f32[B] -> [B, 1]
    (0 where top_p >= 1: every token). The nucleus is the most probable tokens whose mass
    before them is below top_p (at least one). Found from the top k tokens, k growing 4x until
    every nucleus ends inside (a full sort of the vocabulary costs far more than a decoding
    step); the value is the same whatever k finds it, so a row never depends on its batch."""
    vocab, everything = probs.shape[-1], top_p[:, None] >= 1
    while True:
        k = min(k, vocab)
        desc = probs.topk(k, dim=-1).values  # sorted, falling
        n_keep = ((desc.cumsum(-1) - desc) < top_p[:, None]).sum(-1, keepdim=True).clamp_min(1)
        if k == vocab or bool(((n_keep < k) | everything).all()):
            return torch.where(everything, torch.zeros_like(desc[:, :1]), desc.gather(-1, n_keep - 1))
        k *= 4


def decode(torch, model, enc, rows: Sequence[GenRequest], stops: set[int]
           ) -> Iterator[tuple[int, list[int]]]:
    """KV-cached decoding of a left-padded batch; yields (row index, new token ids) as each
    row finishes (ids end with the stop token, or stop at the row's max_tokens)."""
    state = _Decoding(torch, model, enc, rows)
    out: list[list[int]] = [[] for _ in rows]
    while state.live:
        keep = []
        for b, (i, t) in enumerate(zip(state.live, state.step(), strict=True)):
            out[i].append(t)
            if t in stops or len(out[i]) >= max(1, rows[i].max_tokens):
                yield i, out[i]
            else:
                keep.append(b)
        state.keep(keep)


class _Decoding:
    """The state of one batch's decoding loop: live rows, their generators, the KV cache.

    live: original row index of each batch position still decoding.
    """

    def __init__(self, torch, model, enc, rows: Sequence[GenRequest]) -> None:
        self.torch, self.model = torch, model
        dev = enc["attention_mask"].device
        self.gens = [torch.Generator().manual_seed(int(r.seed)) for r in rows]
        self.temp = torch.tensor([float(r.temperature) for r in rows], device=dev)
        self.top_p = torch.tensor([float(r.top_p) for r in rows], device=dev)
        self.mask = enc["attention_mask"]
        self.inputs = enc["input_ids"]
        self.pos = (self.mask.cumsum(-1) - 1).clamp_min(0)
        self.live, self.past, self.next = list(range(len(rows))), None, None
        self.names = _forward_names(model)

    def step(self) -> list[int]:
        """One forward pass and one sampled token per live row."""
        torch = self.torch
        with torch.inference_mode():
            cache, keep_logits = self.names
            res = self.model(input_ids=self.inputs, position_ids=self.pos, attention_mask=self.mask,
                             use_cache=True, **{cache: self.past, keep_logits: 1})
            uniform = self._uniform(res.logits.shape[-1])
            self.past = getattr(res, cache)
            self.next = sample(torch, res.logits[:, -1].float(), self.temp, self.top_p,
                               uniform.to(self.temp.device))
        return self.next.tolist()

    def _uniform(self, vocab: int):
        """[B, V] draws, each row from its own generator (greedy rows draw nothing)."""
        hot = (self.temp > 0).tolist()
        return self.torch.stack([self.torch.rand(vocab, generator=self.gens[i]) if h
                                 else self.torch.zeros(vocab) for i, h in zip(self.live, hot, strict=True)])

    def keep(self, keep: list[int]) -> None:
        """Drop the finished rows (cache rows included) and feed the sampled tokens."""
        torch = self.torch
        self.live = [self.live[b] for b in keep]
        if not self.live:
            return
        with torch.inference_mode():
            if len(keep) < len(self.next):
                idx = torch.tensor(keep, device=self.mask.device)
                self.past.batch_select_indices(idx)
                self.mask, self.next, self.pos = self.mask[idx], self.next[idx], self.pos[idx]
                self.temp, self.top_p = self.temp[idx], self.top_p[idx]
            self.mask = torch.cat([self.mask, self.mask.new_ones((len(keep), 1))], dim=1)
            self.inputs, self.pos = self.next[:, None], self.pos[:, -1:] + 1


def _forward_names(model) -> tuple[str, str]:
    """(KV-cache argument, last-logits argument) of this transformers version's forward:
    `cache` (>= 5.x) or `past_key_values`; `logits_to_keep` or `num_logits_to_keep` (4.45)."""
    params = inspect.signature(model.forward).parameters
    cache = "cache" if "cache" in params else "past_key_values"
    return cache, "logits_to_keep" if "logits_to_keep" in params else "num_logits_to_keep"


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
