"""The transformers back-end's decoding loop: per-row sampling, per-sequence streaming, model
checks (packaged SmolLM2 on the CPU)."""

import pytest
import torch

from aeuf.backends import hf_models
from aeuf.backends.gen_transformers import sample
from aeuf.backends.generation import make_backend
from aeuf.config import GenerateConfig
from aeuf.errors import ConfigError
from aeuf.generate import ModelSpec, plan

pytest_plugins = ["genmodels"]

PROMPTS = ["What is the capital of France?", "Name three colours.", "Say hello in Spanish.",
           "Write a haiku about the sea."]


def _requests(path: str, prompts=PROMPTS, **kw):
    cfg = GenerateConfig(**{"num_responses": 2, **kw})
    return plan([f"p{i}" for i in range(len(prompts))], list(prompts), [ModelSpec("smol", path)], cfg)


def _vec(*xs):
    return torch.tensor(xs, dtype=torch.float32)


def test_sample_draws_each_row_from_its_own_nucleus_by_inverse_cdf():
    logits = torch.log(_vec(0.1, 0.5, 0.05, 0.3, 0.05))[None]
    n = 1000
    u = (torch.arange(n, dtype=torch.float32) + 0.5) / n  # an exact grid over [0, 1)
    rows = logits.expand(n, -1)
    got = sample(torch, rows, torch.ones(n), torch.full((n,), 0.75), u)
    # nucleus at 0.75: 0.5 and 0.3 (the mass before 0.3 is 0.5 < 0.75; before 0.1 it is 0.8)
    counts = torch.bincount(got, minlength=5).tolist()
    assert counts == [0, 625, 0, 375, 0]  # 0.5 / 0.8 and 0.3 / 0.8 of the grid, vocab order
    full = torch.bincount(sample(torch, rows, torch.ones(n), torch.ones(n), u), minlength=5)
    assert full.tolist() == [100, 500, 50, 300, 50]
    greedy = sample(torch, rows[:3], torch.zeros(3), torch.ones(3), u[:3])
    assert greedy.tolist() == [1, 1, 1]


def test_sample_row_depends_on_its_own_inputs_only():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 50, generator=g) * 3
    temp, top_p, u = _vec(1.0, 0.7, 0.0, 1.3, 0.5, 1.0), _vec(0.9, 1.0, 0.9, 0.5, 0.95, 0.2), torch.rand(6, generator=g)
    batch = sample(torch, logits, temp, top_p, u)
    alone = [int(sample(torch, logits[i:i + 1], temp[i:i + 1], top_p[i:i + 1], u[i:i + 1])) for i in range(6)]
    assert batch.tolist() == alone


def test_a_seed_gives_the_same_response_at_batch_size_1_and_4(smol_dir):
    reqs = _requests(smol_dir, temperature=1.0, top_p=0.95, max_tokens=12)
    one = {g.key: g.text for g in make_backend(GenerateConfig(batch_size=1)).generate(smol_dir, reqs)}
    four = {g.key: g.text for g in make_backend(GenerateConfig(batch_size=4)).generate(smol_dir, reqs)}
    assert one == four
    assert len(set(one.values())) == len(reqs)  # sampled: every response differs


def test_each_response_is_yielded_when_its_row_finishes(smol_dir):
    """One batch where one row stops early: its Generation comes out while the others decode."""
    prompts = ["Say only the word yes.", "Write a long story about a dragon and a knight.",
               "Describe the history of Rome in detail."]
    reqs = _requests(smol_dir, prompts, num_responses=1, temperature=0.0, max_tokens=40)
    _, lm = hf_models.load(smol_dir)
    calls = []
    hook = lm.register_forward_hook(lambda *a: calls.append(1))
    try:
        seen = [(g, len(calls)) for g in make_backend(GenerateConfig(batch_size=3)).generate(smol_dir, reqs)]
    finally:
        hook.remove()
    first, calls_at_first = seen[0]
    assert first.finish_reason == "stop" and first.completion_tokens < 40
    assert calls_at_first == first.completion_tokens < len(calls)  # out before the batch ended
    tokens = [g.completion_tokens for g, _ in seen]
    assert tokens == sorted(tokens)  # in the order the rows finished
    assert {g.key for g, _ in seen} == {r.key for r in reqs}


def test_check_accepts_loadable_models_and_names_what_is_wrong(smol_dir, tmp_path):
    backend = make_backend(GenerateConfig())
    backend.check(smol_dir)
    backend.check("smollm2")
    cases = {
        "smolm2": "did you mean smollm2",
        "Qwen/Qwen2.5-0.5B-Instruct": "HF_HUB_OFFLINE is set: download it first",
        str(tmp_path): "has no config.json",
        str(tmp_path / "m.gguf"): "model file not found",
    }
    for path, why in cases.items():
        with pytest.raises(ConfigError) as err:
            backend.check(path)
        message = str(err.value)
        assert why in message and "\n" not in message
        assert path in message
