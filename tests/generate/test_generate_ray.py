"""Ray Data runner on a local 2-CPU Ray instance with the transformers back-end."""

import numpy as np
import pandas as pd
import pytest
import ray  # a test that cannot start Ray fails: Ray is a test dependency

from aeuf.config import GenerateConfig
from aeuf.errors import ConfigError
from aeuf.generate import ModelSpec
from aeuf.io import GenLog
from aeuf.run.jobs.gen_run import LOG_NAME, OUT_NAME, run_generation

pytest_plugins = ["genmodels"]

PROMPTS = ["Name a fruit.", "Say hi.", "What is 3 + 4?", "Name a planet.", "Say bye."]


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.mark.slow
def test_ray_generation_writes_the_same_run_directory(local_ray, smol_dir, tmp_path):
    specs = [ModelSpec("smol", smol_dir)]
    ids = [f"r{i}" for i in range(len(PROMPTS))]
    base = dict(num_responses=2, max_tokens=6, temperature=0.9, batch_size=2)
    summary = run_generation(ids, PROMPTS, specs, GenerateConfig(ray=True, ray_replicas=2, **base), tmp_path / "ray")
    base["batch_size"] = 4
    assert (summary.generated, summary.failed) == (10, 0)
    local = run_generation(ids, PROMPTS, specs, GenerateConfig(**base), tmp_path / "local")
    ray_log, local_log = GenLog(tmp_path / "ray" / LOG_NAME).load(), GenLog(tmp_path / "local" / LOG_NAME).load()
    assert set(ray_log) == set(local_log) and len(ray_log) == 10
    # sampled, yet the same response whichever worker and batch produced it: the request's seed
    assert {k: r["response"] for k, r in ray_log.items()} == {k: r["response"] for k, r in local_log.items()}
    a, b = pd.read_parquet(tmp_path / "ray" / OUT_NAME), pd.read_parquet(tmp_path / "local" / OUT_NAME)
    assert a["prompt_id"].tolist() == b["prompt_id"].tolist() == ids
    assert [len(c) for c in a["completions"]] == [2] * len(PROMPTS)
    assert summary.completion_tokens > 0 and local.generated == 10


def test_ray_run_checks_models_on_a_worker_and_writes_nothing(local_ray, tmp_path):
    cfg = GenerateConfig(ray=True, ray_replicas=2, num_responses=1, max_tokens=4)
    with pytest.raises(ConfigError, match="'smolm2'.*did you mean smollm2") as err:
        run_generation(["a"], ["Say hi."], [ModelSpec("typo", "smolm2")], cfg, tmp_path / "run")
    assert "\n" not in str(err.value)
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_ray_features_match_the_local_engine_in_input_order(local_ray, smol_dir):
    from aeuf.backends import hidden_states

    texts = [p * (i + 1) for i, p in enumerate(PROMPTS)]
    got = hidden_states.encode_on_ray(texts, smol_dir, batch_size=2, max_length=64, replicas=2)
    ref = hidden_states.encode(texts, smol_dir, batch_size=2, max_length=64)
    assert got.shape == ref.shape and got.dtype == np.float32
    np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)
    via_prefix = hidden_states.encode(texts, f"ray:{smol_dir}", batch_size=5, max_length=64)
    np.testing.assert_allclose(via_prefix, ref, rtol=1e-4, atol=1e-4)
