"""The oracle's configs: an OpenAI-compatible endpoint (with its prices and limits), the
reward-model oracle, and the oracle as a whole (judge template and sampling, the cascade's
cheap judge, the batch and local oracles). What a run may spend is the run's own setting
(aeuf.config.spend.SpendConfig), not the oracle's."""

from __future__ import annotations

import re
from dataclasses import dataclass

from aeuf.config.fields import SettingError, at_least, opt, sub


@dataclass(frozen=True, kw_only=True)
class EndpointConfig:
    """An OpenAI-compatible server: the judge's, a cheap judge's, or generation's."""

    base_url: str | None = opt(None, "OpenAI-compatible base URL, e.g. http://127.0.0.1:8000/v1")
    model: str | None = opt(None, "model name at that endpoint")
    api_key_env: str = opt("OPENAI_API_KEY", "environment variable holding the API key "
                                             "(read from the environment, never written)")
    concurrency: int = opt(4, "requests in flight")
    requests_per_minute: float | None = opt(None, "requests-per-minute cap", flag="rpm")
    tokens_per_minute: float | None = opt(None, "tokens-per-minute cap", flag="tpm")
    timeout: float = opt(60.0, "seconds per request, in all (connecting, sending, the whole "
                               "reply): a server that trickles its reply is cut off")
    retries: int = opt(5, "retries per request (transport faults, 429, 5xx)")
    price_in: float = opt(0.0, "USD per 1M prompt tokens")
    price_out: float = opt(0.0, "USD per 1M completion tokens")
    send_key_to_local: bool = opt(False, "also send the API key to a server on this machine "
                                         "(127.0.0.1, localhost, ::1); by default such a "
                                         "server gets a placeholder key")

    def __post_init__(self):
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", self.api_key_env):  # never echo a key
            raise SettingError("api_key_env", "(not shown)", "must be the name of an "
                               "environment variable (letters, digits, _), never a key")
        at_least(self, 1, "concurrency")
        at_least(self, 0, "retries", "price_in", "price_out")
        at_least(self, 0, "timeout", "requests_per_minute", "tokens_per_minute", strict=True)


@dataclass(frozen=True, kw_only=True)
class RewardModelConfig:
    """`--oracle reward_model`: a sequence-classification reward model as the oracle (AEPO's
    annotator), local in transformers or served over HTTP; also the `rm` feature part."""

    model: str | None = opt(None, "reward model: a transformers folder or hub id (local "
                                  "scoring), or the served model's name with --rm_base_url",
                            flag="reward_model")
    convention: str = opt("auto", "input convention: chat (the conversation in the model's "
                                  "chat template: Skywork-Reward, ArmoRM), pair (prompt and "
                                  "response as a text pair: OpenAssistant DeBERTa) or auto "
                                  "(chat when the tokenizer has a chat template)",
                          flag="rm_convention", choices=("auto", "chat", "pair"))
    batch_size: int = opt(16, "inputs per reward-model batch (batched by token length)",
                          flag="rm_batch_size")
    max_length: int = opt(2048, "reward-model tokens per input: a longer response loses its "
                                "middle, with the judge's visible cut marker",
                          flag="rm_max_length")
    aspect: str = opt("mean", "multi-head reward models: the score is this head's output (a "
                              "label name or index), or the mean of all heads",
                      flag="rm_aspect")
    base_url: str | None = opt(None, "a served reward model: the server's base URL (vLLM "
                                     "pooling / score / classify endpoints)",
                               flag="rm_base_url")
    endpoint: str = opt("pooling", "served reward model: pooling (vLLM /pooling with chat "
                                   "messages), score (/score: prompt and response as a text "
                                   "pair) or classify (/classify on the chat text)",
                        flag="rm_endpoint", choices=("pooling", "score", "classify"))
    timeout: float = opt(60.0, "served reward model: seconds per request, in all",
                         flag="rm_timeout")
    retries: int = opt(4, "served reward model: retries of a failed request",
                       flag="rm_retries")

    def __post_init__(self) -> None:
        at_least(self, 1, "batch_size")
        at_least(self, 16, "max_length")
        at_least(self, 0, "timeout", strict=True)
        at_least(self, 0, "retries")


@dataclass(frozen=True, kw_only=True)
class WebConfig:
    """The web oracle's page (--oracle web): where it listens and who annotates."""

    host: str = opt("127.0.0.1", "web oracle: address to listen on (loopback by default; "
                                 "tokens are always required)", flag="web_host")
    port: int = opt(0, "web oracle: port (0: a free one, printed)", flag="web_port")
    annotators: int = opt(1, "web oracle: annotators (one link with its own token each)",
                          flag="annotators")
    votes_per_pair: int = opt(1, "web oracle: annotators asked per pair (the export keeps "
                                 "the majority; a split is a tie)", flag="votes_per_pair")


@dataclass(frozen=True, kw_only=True)
class OracleConfig:
    name: str = opt("auto", "auto, replay, judge, batch, local, reward_model, human, web or "
                            "none", flag="oracle")
    web: WebConfig = sub(WebConfig, "the web oracle's page")
    label_mode: str = opt("deterministic", "replay: deterministic, bernoulli or soft")
    judge: EndpointConfig = sub(EndpointConfig, "the LLM judge's endpoint", prefix="judge_")
    template: str = opt("overall", "overall, ultrafeedback, pairwise, an aspect, or template "
                                   "file(s), comma-separated", flag="judge_template")
    temperature: float = opt(0.0, "judge sampling temperature", flag="judge_temperature")
    max_tokens: int = opt(256, "judge reply length cap", flag="judge_max_tokens")
    context_tokens: int = opt(8192, "the judge model's context length in tokens: longer "
                                    "texts do not fit whole (see --judge_overlong)",
                              flag="judge_context")
    overlong: str = opt("loss", "a response too long for the judge's context: loss (not sent; "
                                "it loses to every response read whole), skip (not sent; no "
                                "score), or cut (sent with its middle cut out, which the "
                                "judge is told); each is marked in the ledger and the rows' "
                                "`cut` column", flag="judge_overlong",
                        choices=("loss", "skip", "cut"))
    answer_format: str = opt("auto", "how the judge answers: json_schema (structured output), "
                                     "json_object (llama-cpp-python's JSON mode), lines (the "
                                     "template's first line, 'Rating: 4'), or auto (the first "
                                     "of these the server accepts)",
                             flag="judge_answer_format",
                             choices=("auto", "json_schema", "json_object", "lines"))
    logprobs: bool = opt(True, "ask the judge for log-probs (rating = expectation over "
                               "'1'..'5')", flag="judge_logprobs")
    cheap_judge: EndpointConfig = sub(EndpointConfig, "a cheaper judge asked first (a cascade: "
                                      "the judge above sees only the pairs the cheap one is "
                                      "unsure of or that disagree with the head)",
                                      prefix="cheap_judge_")
    cheap_judge_margin: float = opt(0.5, "cascade: the cheap judge is unsure of a pair when its "
                                         "two scores differ by less than this, in the judge's "
                                         "own units (rating points of the expected 1-5 rating; "
                                         "pairwise template: 2p-1, from 0 to 1)")
    batch_shard_size: int = opt(1000, "batch oracle: requests per uploaded shard")
    batch_poll_seconds: float = opt(30.0, "batch oracle: seconds between polls")
    local_model: str | None = opt(None, "local oracle: GGUF file (default: the packaged "
                                        "SmolLM2-135M)")
    rm: RewardModelConfig = sub(RewardModelConfig, "the reward model "
                                "(--oracle reward_model, --features rm)")

    def __post_init__(self):
        at_least(self, 0, "temperature", "cheap_judge_margin")
        at_least(self, 1, "max_tokens", "context_tokens", "batch_shard_size")
        at_least(self, 0, "batch_poll_seconds", strict=True)
