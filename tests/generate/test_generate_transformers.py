"""The transformers back-end's decoding loop: per-row sampling, per-sequence streaming, model
checks (packaged SmolLM2 on the CPU)."""

import pytest
import torch

from aeuf.backends import hf_models
from aeuf.backends.gen_transformers import nucleus_floor, sample
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


def test_sample_draws_each_row_from_its_renormalised_nucleus():
    probs = _vec(0.1, 0.5, 0.05, 0.3, 0.05)
    n, g = 20000, torch.Generator().manual_seed(0)
    rows = torch.log(probs)[None].expand(n, -1)
    u = torch.rand(n, 5, generator=g)
    for top_p, expect in [(0.75, [0, 0.625, 0, 0.375, 0]), (1.0, probs.tolist())]:
        got = sample(torch, rows, torch.ones(n), torch.full((n,), top_p), u)
        freq = torch.bincount(got, minlength=5) / n
        # nucleus at 0.75: 0.5 and 0.3 (mass before 0.3 is 0.5 < 0.75; before 0.1 it is 0.8)
        assert torch.allclose(freq, torch.tensor(expect), atol=0.015), (top_p, freq)
    hot = sample(torch, rows, torch.full((n,), 4.0), torch.ones(n), u)  # T=4 flattens
    assert (torch.bincount(hot, minlength=5) / n).min() > 0.12
    greedy = sample(torch, rows[:3], torch.zeros(3), torch.ones(3), u[:3])
    assert greedy.tolist() == [1, 1, 1]


def test_nucleus_floor_equals_the_full_sort_for_narrow_and_wide_nuclei():
    g = torch.Generator().manual_seed(2)
    logits = torch.randn(5, 3000, generator=g) * torch.tensor([[8.0], [3.0], [1.0], [0.2], [1.0]])
    probs = torch.softmax(logits, dim=-1)
    top_p = _vec(0.95, 0.9, 0.95, 0.5, 1.0)
    desc = probs.sort(dim=-1, descending=True).values
    n_keep = ((desc.cumsum(-1) - desc) < top_p[:, None]).sum(-1, keepdim=True)
    want = desc.gather(-1, n_keep - 1)
    want[4] = 0.0  # top_p 1: every token
    assert 1 < n_keep[0] < 64 < n_keep[2] < 3000  # nuclei inside and beyond the first top-k
    assert torch.equal(nucleus_floor(torch, probs, top_p), want)


def test_sample_row_depends_on_its_own_inputs_only():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(6, 50, generator=g) * 3
    temp, top_p = _vec(1.0, 0.7, 0.0, 1.3, 0.5, 1.0), _vec(0.9, 1.0, 0.9, 0.5, 0.95, 0.2)
    u = torch.rand(6, 50, generator=g)
    batch = sample(torch, logits, temp, top_p, u)
    alone = [int(sample(torch, logits[i:i + 1], temp[i:i + 1], top_p[i:i + 1], u[i:i + 1])) for i in range(6)]
    assert batch.tolist() == alone


def test_sample_is_stable_under_float_noise_in_the_logits():
    """What another batch size does to the logits (noise ~1e-5) must not move a sample unless
    a uniform lands on a boundary: near-equal tokens swapping places must not matter."""
    g = torch.Generator().manual_seed(1)
    logits = torch.round(torch.randn(64, 500, generator=g) * 20) / 10  # many exact ties
    noisy = logits + 1e-5 * torch.randn(64, 500, generator=g)
    ones, u = torch.ones(64), torch.rand(64, 500, generator=g)
    for top_p in (1.0, 0.9):
        p = torch.full((64,), top_p)
        assert sample(torch, logits, ones, p, u).tolist() == sample(torch, noisy, ones, p, u).tolist()


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
