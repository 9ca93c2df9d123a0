"""The `vllm` generation back-end: offline `LLM.generate`, batched over all prompts of a model.

Chat templates are applied with the model's own tokenizer (`build_request`), each request keeps
its own SamplingParams (its seed included), and one model is loaded at a time: loading the
next model of a pool frees the previous one first. `build_request` needs no vllm, so the
request it builds is tested on machines without a GPU.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator, Sequence

from aeuf.backends import hf_models, require
from aeuf.config import GenerateConfig
from aeuf.types import Generation, GenRequest


def sampling_kwargs(r: GenRequest) -> dict:
    """Keyword arguments of vllm.SamplingParams for one request."""
    return {"n": 1, "temperature": r.temperature, "top_p": r.top_p, "max_tokens": r.max_tokens,
            "seed": r.seed}


def build_request(tokenizer, requests: Sequence[GenRequest]) -> tuple[list[str], list[dict]]:
    """(prompts after the chat template [N], SamplingParams kwargs [N]) for LLM.generate."""
    prompts = [hf_models.chat_text(tokenizer, r.prompt) for r in requests]
    return prompts, [sampling_kwargs(r) for r in requests]


class VLLMBackend:
    """Offline vLLM on the GPU(s); cfg.tensor_parallel_size GPUs per model."""

    def __init__(self, cfg: GenerateConfig) -> None:
        self.vllm = require("vllm", extra="gpu")
        self.tp = cfg.tensor_parallel_size
        self.path: str | None = None
        self.llm = None

    def check(self, path: str) -> None:
        """ConfigError unless `path` is a loadable file, folder, cached or hub model."""
        hf_models.check(path)

    def _load(self, path: str):
        if self.path != path:
            self.close()
            self.llm = self.vllm.LLM(model=hf_models.vllm_path(path), tensor_parallel_size=self.tp,
                                     seed=0, enable_prefix_caching=True)
            self.path = path
        return self.llm

    def generate(self, path: str, requests: Sequence[GenRequest]) -> Iterator[Generation]:
        """Yield one Generation per request after one batched LLM.generate call."""
        llm = self._load(path)
        prompts, kwargs = build_request(llm.get_tokenizer(), requests)
        params = [self.vllm.SamplingParams(**k) for k in kwargs]
        outs = llm.generate(prompts, params, use_tqdm=False)
        for r, out in zip(requests, outs, strict=True):
            c = out.outputs[0]
            yield Generation(r.key, c.text.strip(), len(out.prompt_token_ids or ()),
                             len(c.token_ids), c.finish_reason or "")

    def close(self) -> None:
        if self.llm is not None:
            self.llm, self.path = None, None
            gc.collect()
            torch = require("torch")
            if torch.cuda.is_available():
                torch.cuda.empty_cache()
