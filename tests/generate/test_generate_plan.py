"""Pool sampling and request planning (aeuf.generate): pure, fast."""

from collections import Counter

import numpy as np
import pytest

from aeuf.config import GenerateConfig
from aeuf.errors import ConfigError
from aeuf.generate import ModelSpec, by_model, draw_models, filter_pool, parse_models, plan

POOL = ["llama-3-8b", "llama-3-70b", "qwen-7b", "qwen-72b", "mistral-7b", "gemma-2b"]
IDS = [f"p{i}" for i in range(200)]
PROMPTS = [f"prompt number {i}" for i in range(200)]


def _plan(**kw):
    cfg = GenerateConfig(models=tuple(POOL), **kw)
    return plan(IDS, PROMPTS, parse_models(POOL), cfg)


def _per_prompt(reqs):
    out = {}
    for r in reqs:
        out.setdefault(r.prompt_id, []).append(r)
    return out


@pytest.mark.parametrize("n", [1, 4, 6, 9, 14])
def test_every_prompt_gets_exactly_num_responses_with_slots_in_order(n):
    groups = _per_prompt(_plan(num_responses=n))
    assert list(groups) == IDS
    for reqs in groups.values():
        assert [r.slot for r in reqs] == list(range(n))
        # distinct models when the pool is big enough, else whole rounds of the pool + a rest
        q, rest = divmod(n, len(POOL))
        even = [q + (i < rest) for i in range(len(POOL))]
        counts = Counter(r.model for r in reqs)
        assert sorted(counts.values()) == sorted(c for c in even if c)


def test_draws_cover_the_pool_roughly_uniformly():
    counts = Counter(r.model for r in _plan(num_responses=4))
    assert set(counts) == set(POOL)
    expected = 200 * 4 / len(POOL)
    assert all(abs(c - expected) < 0.25 * expected for c in counts.values()), counts


def test_on_policy_model_always_in_slot_zero_and_not_repeated():
    groups = _per_prompt(_plan(num_responses=4, one_side_model="qwen-7b"))
    for reqs in groups.values():
        assert reqs[0].model == "qwen-7b"
        assert all(r.model != "qwen-7b" for r in reqs[1:])
        assert len({r.model for r in reqs}) == 4


def test_on_policy_with_a_single_model_pool_fills_every_slot_with_it():
    cfg = GenerateConfig(num_responses=3, one_side_model="solo")
    reqs = plan(["a"], ["x"], parse_models(["solo"]), cfg)
    assert [r.model for r in reqs] == ["solo"] * 3
    assert len({r.seed for r in reqs}) == 3  # same model, different samples


def test_include_and_exclude_filters_are_honoured():
    reqs = _plan(num_responses=3, include_model=("llama-*", "qwen-*"), exclude_model=("*-70b",))
    used = {r.model for r in reqs}
    assert used == {"llama-3-8b", "qwen-7b", "qwen-72b"}


def test_filters_that_leave_nothing_or_drop_the_on_policy_model_are_errors():
    with pytest.raises(ConfigError, match="no model left"):
        _plan(include_model=("gpt-*",))
    with pytest.raises(ConfigError, match="one_side_model"):
        _plan(exclude_model=("qwen-*",), one_side_model="qwen-7b")


def test_plan_is_deterministic_and_per_prompt_stable_when_prompts_are_added():
    a = _plan(num_responses=3)
    cfg = GenerateConfig(models=tuple(POOL), num_responses=3)
    b = plan(IDS[:50], PROMPTS[:50], parse_models(POOL), cfg)
    assert [r.key for r in a[:150]] == [r.key for r in b]
    assert [r.key for r in _plan(num_responses=3, seed=1)] != [r.key for r in a]


def test_each_request_records_model_sampling_parameters_and_seed():
    specs = [ModelSpec("cold", "m.gguf", temperature=0.1, max_tokens=32), ModelSpec("hot", "m.gguf")]
    cfg = GenerateConfig(num_responses=2, temperature=0.9, top_p=0.8, max_tokens=64)
    reqs = plan(["q"], ["hello"], specs, cfg)
    got = {r.model: r.sampling() for r in reqs}
    assert got["cold"]["temperature"] == 0.1 and got["cold"]["max_tokens"] == 32
    assert got["cold"]["top_p"] == 0.8
    assert got["hot"] == {**got["hot"], "temperature": 0.9, "top_p": 0.8, "max_tokens": 64}
    assert len({r.seed for r in reqs}) == 2 and len({r.key for r in reqs}) == 2
    assert list(by_model(reqs)) == ["m.gguf"]


def test_changing_a_prompt_text_changes_its_keys_only():
    cfg = GenerateConfig(num_responses=2)
    specs = parse_models(["a", "b"])
    one = plan(["x", "y"], ["first", "second"], specs, cfg)
    two = plan(["x", "y"], ["first", "SECOND"], specs, cfg)
    assert one[0].key == two[0].key and one[2].key != two[2].key


def test_draw_models_distinct_then_balanced():
    rng = np.random.default_rng(0)
    assert sorted(draw_models(5, 5, rng)) == list(range(5))
    counts = np.bincount(draw_models(13, 5, rng), minlength=5)
    assert counts.sum() == 13 and counts.max() - counts.min() <= 1


def test_parse_models_records_and_errors():
    specs = parse_models(["a", {"name": "b-cold", "path": "b", "temperature": 0.0}, {"path": "c"}])
    assert specs[1] == ModelSpec("b-cold", "b", 0.0) and specs[2].name == "c"
    with pytest.raises(ConfigError, match="duplicate"):
        parse_models(["a", "a"])
    with pytest.raises(ConfigError, match="unknown temp"):
        parse_models([{"name": "a", "temp": 1}])
    with pytest.raises(ConfigError):
        filter_pool(parse_models(["a"]), exclude=("*",))
    with pytest.raises(ConfigError, match="num_responses"):
        plan(["x"], ["y"], specs, GenerateConfig(num_responses=0))


def test_models_flag_expands_json_and_txt_files(tmp_path):
    import argparse
    import json

    from aeuf.commands.generate import add_arguments, config_of
    from aeuf.run.jobs.gen_run import read_model_entries

    (tmp_path / "pool.json").write_text(json.dumps(["m1", {"name": "m2-cold", "path": "m2", "temperature": 0}]))
    (tmp_path / "pool.txt").write_text("# my pool\nm3\n\nm4  # small\n")
    entries = read_model_entries([str(tmp_path / "pool.json"), f"{tmp_path / 'pool.txt'},m5"])
    specs = parse_models(entries)
    assert [s.name for s in specs] == ["m1", "m2-cold", "m3", "m4", "m5"]
    assert specs[1].path == "m2" and specs[1].temperature == 0
    p = argparse.ArgumentParser()
    add_arguments(p)
    args = p.parse_args(["x.csv", "--models", "a", "b", "--num_responses", "3", "--exclude_model", "b*",
                         "--one_side_model", "a", "--ray"])
    cfg = config_of(args)
    assert (cfg.num_responses, cfg.exclude_model, cfg.one_side_model, cfg.ray) == (3, ("b*",), "a", True)
    assert cfg.temperature == GenerateConfig().temperature  # unset flags keep the defaults
