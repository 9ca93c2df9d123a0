"""The `openai` generation back-end: any OpenAI-compatible server (vLLM serve, llama.cpp
server, OpenAI), concurrent requests with the judge's retry and rate-limit machinery
(`aeuf.backends.openai_client`). `path` is the model name the server knows."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from aeuf.backends import require
from aeuf.backends.openai_client import ChatResult, complete_many, open_client, settings_for
from aeuf.config import GenerateConfig
from aeuf.errors import ConfigError
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


def served_models(http, url: str) -> set[str] | None:
    """The model names the server lists (GET /models), None when it lists none; ConfigError
    (one line) when it cannot be reached or refuses the key."""
    openai = require("openai")
    try:
        page = http.with_options(max_retries=1, timeout=30.0).models.list()
    except openai.APIConnectionError as err:
        raise ConfigError(f"generation server {url} cannot be reached ({err}); start it or fix "
                          "--base_url") from None
    except openai.AuthenticationError:
        raise ConfigError(f"generation server {url} refused the API key; check --api_key_env") from None
    except openai.APIStatusError:
        return None  # no model listing here: the first request will tell
    names = {str(m.id) for m in page.data}
    return names or None


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
        self.url = cfg.endpoint.base_url or "the OpenAI API"
        self.client = open_client(settings_for(cfg.endpoint))

    def check(self, path: str) -> None:
        """ConfigError unless the server answers and, when it lists its models, lists `path`."""
        names = served_models(self.client.raw, self.url)
        if names is not None and path not in names:
            shown = ", ".join(sorted(names)[:8]) + (", ..." if len(names) > 8 else "")
            raise ConfigError(f"model '{path}' is not served at {self.url} (it serves: {shown}); "
                              "pass one of those names to --models")

    def generate(self, path: str, requests: Sequence[GenRequest]) -> Iterator[Generation]:
        """Yield one Generation per request, in completion order."""
        bodies = (body(path, r) for r in requests)
        for i, res in complete_many(self.client, bodies, self.concurrency):
            yield to_generation(requests[i], res)

    def close(self) -> None:
        self.client.close()
