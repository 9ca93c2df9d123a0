"""`--oracle local`: the LLM judge against a llama.cpp server this process starts on the CPU.

The model is cfg.local_model (a GGUF path) or the packaged SmolLM2-135M-Instruct: a weak
judge that lets the whole pipeline run offline; swap in a strong endpoint with
--judge_base_url. The server starts on the first send and stops on close(), with a context
of --judge_context tokens (at most LOCAL_CONTEXT); it answers in llama-cpp-python's JSON
mode unless --judge_answer_format says otherwise. It never receives the user's API key.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from aeuf.config import OracleConfig
from aeuf.oracle.base import Capabilities, Lazy, Oracle, register
from aeuf.oracle.judge import judge_oracle

LOCAL_CONTEXT = 8192  # SmolLM2's training context


def local_model_name(cfg: OracleConfig) -> str:
    """The judge model name used in request keys: --judge_model, else the GGUF file name."""
    from aeuf.backends.llama_server import PACKAGED_GGUF

    return cfg.judge.model or Path(cfg.local_model or PACKAGED_GGUF).stem


LOCAL = Capabilities(llm_judge=True, model_judge=True)  # free: no prices, no endpoint of the user's


def local_needs(cfg: OracleConfig) -> None:
    """llama-cpp-python and the GGUF, before any work (MissingExtra / ConfigError)."""
    from aeuf.backends import llama_server

    llama_server.require(cfg.local_model)


@register("local", LOCAL, model=local_model_name, needs=local_needs)
def local_oracle(cfg: OracleConfig, **_) -> Oracle:
    """The judge oracle on a local llama.cpp server (started lazily, stopped by close)."""
    model = local_model_name(cfg)
    fmt = "json_object" if cfg.answer_format == "auto" else cfg.answer_format
    cfg = dataclasses.replace(cfg, answer_format=fmt,
                              context_tokens=min(cfg.context_tokens, LOCAL_CONTEXT),
                              judge=dataclasses.replace(cfg.judge, send_key_to_local=False))

    def start():
        from aeuf.backends import llama_server

        return llama_server.start(cfg.local_model, alias=model, n_ctx=cfg.context_tokens)

    server = Lazy(start, close=lambda s: s.stop())
    return judge_oracle(cfg, name="local", connect=lambda: server.get().base_url, model=model,
                        on_close=server.close, caps=LOCAL)
