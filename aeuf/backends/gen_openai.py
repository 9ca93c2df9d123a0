"""The `openai` generation back-end: any OpenAI-compatible server (vLLM serve, llama.cpp
server, OpenAI), concurrent requests with the judge's retry and rate-limit machinery
(`aeuf.backends.openai_client`). `path` is the model name the server knows."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from aeuf.backends.openai_client import ChatResult, complete_many, open_client, settings_for
from aeuf.config import GenerateConfig
from aeuf.types import Generation, GenRequest


def body(path: str, r: GenRequest) -> dict:
    """The chat-completion body for one request (the server applies its chat template)."""
    return {
        "model": path,
        "messages": [{"role": "user", "content": r.prompt}],
        "temperature": r.temperature,
        "top_p": r.top_p,
        "max_tokens": r.max_tokens,
        "seed": r.seed,
    }


def to_generation(r: GenRequest, res: ChatResult) -> Generation:
    """A ChatResult as a Generation; a failed request keeps its error and no text."""
    if res.error is not None or res.text is None:
        return Generation(r.key, "", error=res.error or "no text")
    return Generation(r.key, res.text.strip(), res.prompt_tokens, res.completion_tokens,
                      res.finish_reason or "")


class OpenAIBackend:
    """Chat completions from cfg.endpoint.base_url with cfg.endpoint.concurrency requests in flight."""

    def __init__(self, cfg: GenerateConfig) -> None:
        self.concurrency = cfg.endpoint.concurrency
        self.client = open_client(settings_for(cfg.endpoint))

    def generate(self, path: str, requests: Sequence[GenRequest]) -> Iterator[Generation]:
        """Yield one Generation per request, in completion order."""
        bodies = (body(path, r) for r in requests)
        for i, res in complete_many(self.client, bodies, self.concurrency):
            yield to_generation(requests[i], res)

    def close(self) -> None:
        self.client.close()
