"""Generation back-ends: transformers (packaged SmolLM2, CPU), openai (the real llama.cpp
server), vllm (the request it builds; the real engine under the `gpu` marker)."""

import importlib.util

import pytest
import torch
from configs import generate_config

from aeuf.backends import hf_models
from aeuf.backends.gen_transformers import batches
from aeuf.backends.gen_vllm import build_request
from aeuf.backends.generation import BACKENDS, make_backend
from aeuf.config import GenerateConfig
from aeuf.errors import ConfigError, MissingExtra
from aeuf.generate import ModelSpec, plan

pytest_plugins = ["servers", "genmodels"]

PROMPTS = ["What is the capital of France?", "Name three colours.", "Say hello in Spanish."]


def _requests(path: str, n: int = 1, **kw):
    cfg = GenerateConfig(num_responses=n, **kw)
    return plan([f"p{i}" for i in range(len(PROMPTS))], PROMPTS, [ModelSpec("smol", path)], cfg)


def _check_answers(reqs, gens, max_tokens):
    assert sorted(g.key for g in gens) == sorted(r.key for r in reqs)
    for g in gens:
        assert g.error is None and g.text.strip()
        # llama.cpp (0.3.36) may run one token past max_tokens to finish a multi-byte
        # character (seen on an emoji); never more
        assert 0 < g.completion_tokens <= max_tokens + (g.finish_reason == "length")
        assert g.prompt_tokens > 0
        assert g.finish_reason in ("stop", "length")


def test_unknown_backend_names_the_choices():
    with pytest.raises(ConfigError, match="openai, transformers, vllm"):
        make_backend(GenerateConfig(backend="tgi"))
    assert BACKENDS.names() == ["openai", "transformers", "vllm"]


def test_batches_share_one_sampling_setting_and_respect_the_size():
    reqs = _requests("m", temperature=0.5) + _requests("m", temperature=0.0) + _requests("m", max_tokens=9)
    out = batches(reqs, 2, lambda r: len(r.prompt))
    assert sorted(r.key for b in out for r in b) == sorted(r.key for r in reqs)
    for b in out:
        assert len(b) <= 2 and len({(r.temperature, r.top_p, r.max_tokens) for r in b}) == 1


def test_transformers_greedy_batch_matches_unpadded_single_generation(smol_dir):
    reqs = _requests(smol_dir, temperature=0.0, max_tokens=12)
    gens = list(make_backend(GenerateConfig(batch_size=3)).generate(smol_dir, reqs))
    _check_answers(reqs, gens, 12)
    tok, lm = hf_models.load(smol_dir)
    by_key = {g.key: g for g in gens}
    for r in reqs:  # left padding + chat template must give what one unpadded call gives
        ids = tok(hf_models.chat_text(tok, r.prompt), return_tensors="pt", add_special_tokens=False)
        with torch.inference_mode():
            out = lm.generate(**ids, max_new_tokens=12, do_sample=False, pad_token_id=tok.pad_token_id)
        alone = tok.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True).strip()
        assert by_key[r.key].text == alone
    assert "Paris" in by_key[reqs[0].key].text


def test_transformers_sampling_is_reproducible_from_the_request_seeds(smol_dir):
    reqs = _requests(smol_dir, n=2, temperature=1.0, max_tokens=10)
    backend = make_backend(GenerateConfig(batch_size=6))
    a = {g.key: g.text for g in backend.generate(smol_dir, reqs)}
    b = {g.key: g.text for g in backend.generate(smol_dir, reqs)}
    assert a == b
    assert len(set(a.values())) > 3  # two samples per prompt at T=1 differ


@pytest.mark.server
def test_openai_backend_against_the_local_llama_cpp_server(llama_server):
    cfg = generate_config(backend="openai", base_url=llama_server.base_url, concurrency=2)
    reqs = _requests(llama_server.model, temperature=0.0, max_tokens=16)
    backend = make_backend(cfg)
    try:
        first = list(backend.generate(llama_server.model, reqs))
        again = list(backend.generate(llama_server.model, reqs[:1]))
    finally:
        backend.close()
    _check_answers(reqs, first, 16)
    assert {g.key: g.text for g in first}[reqs[0].key] == again[0].text  # greedy, same server


@pytest.mark.server
def test_openai_check_knows_the_served_models(llama_server):
    backend = make_backend(generate_config(backend="openai", base_url=llama_server.base_url))
    try:
        backend.check(llama_server.model)
        with pytest.raises(ConfigError, match=rf"model 'smolm2' is not served at .*it serves: {llama_server.model}"):
            backend.check("smolm2")
    finally:
        backend.close()


def test_openai_check_names_an_unreachable_server():
    from aeuf.backends.llama_server import free_port

    url = f"http://127.0.0.1:{free_port()}/v1"
    backend = make_backend(generate_config(backend="openai", base_url=url))
    with pytest.raises(ConfigError, match=rf"generation server {url} cannot be reached"):
        backend.check("m")
    backend.close()


def test_openai_backend_reports_an_unreachable_server_as_errors_not_exceptions():
    from aeuf.backends.llama_server import free_port

    cfg = generate_config(backend="openai", base_url=f"http://127.0.0.1:{free_port()}/v1",
                          retries=0, timeout=5)
    reqs = _requests("m", max_tokens=4)
    backend = make_backend(cfg)
    gens = list(backend.generate("m", reqs))
    backend.close()
    assert len(gens) == len(reqs) and all(g.error and not g.text for g in gens)


def test_vllm_request_applies_the_chat_template_and_keeps_each_requests_sampling(smol_dir):
    reqs = _requests(smol_dir, n=2, temperature=0.6, top_p=0.9, max_tokens=33)
    tok = hf_models.load_tokenizer(smol_dir)
    prompts, params = build_request(tok, reqs)
    assert len(prompts) == len(params) == len(reqs)
    for r, text, p in zip(reqs, prompts, params):
        assert text == tok.apply_chat_template([{"role": "user", "content": r.prompt}],
                                               tokenize=False, add_generation_prompt=True)
        assert r.prompt in text and text.rstrip().endswith("<|im_start|>assistant")
        assert p == {"n": 1, "temperature": 0.6, "top_p": 0.9, "max_tokens": 33, "seed": r.seed}
    assert len({p["seed"] for p in params}) == len(reqs)


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vllm is installed")
def test_vllm_missing_gives_the_install_hint():
    with pytest.raises(MissingExtra, match=r"aeuf\[gpu\]"):
        make_backend(GenerateConfig(backend="vllm"))


@pytest.mark.gpu
def test_vllm_generates_on_the_gpu(smol_dir):
    reqs = _requests(smol_dir, n=2, temperature=0.7, max_tokens=24)
    backend = make_backend(GenerateConfig(backend="vllm"))
    try:
        gens = list(backend.generate(smol_dir, reqs))
    finally:
        backend.close()
    _check_answers(reqs, gens, 24)


@pytest.mark.gpu
def test_vllm_pooling_features_agree_with_transformers(smol_dir):
    import numpy as np

    from aeuf.backends import hidden_states

    texts = ["The capital of France is Paris.", "Waves fold into foam."]
    ref = hidden_states.encode(texts, smol_dir)
    got = hidden_states.encode(texts, f"vllm:{smol_dir}")
    cos = (ref * got).sum(1) / np.linalg.norm(ref, axis=1) / np.linalg.norm(got, axis=1)
    assert got.shape == ref.shape and (cos > 0.98).all()
