"""The reward-model oracle (issue 23): scores equal a direct forward pass in both input
conventions, the middle cut, the ledger's resume, multi-head aspects, the served path against a
real HTTP server on 127.0.0.1 (with the judge client's faults), and the `rm` feature part.
Every model here is built by the test (tests/support/rm_models.py): nothing is downloaded."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pandas as pd
import pytest
import rm_models

from aeuf.backends import reward_model
from aeuf.config import OracleConfig, RewardModelConfig
from aeuf.errors import ConfigError
from aeuf.oracle import make_oracle
from aeuf.oracle.fence import PLAIN_MARKER as MARKER
from aeuf.oracle.reward_model import head_index
from aeuf.types import JudgeTask

pytest_plugins = ["servers"]

PROMPTS = ["Say hi.", "Write a haiku about rain.", "What is 2+2?"]
RESPONSES = ["Hi!", "Rain on the roof,\nsoft drums in the dark night,\nsleep comes slowly.",
             "4. " * 40 + "It is four."]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("rms")
    return {"chat": str(rm_models.chat_rm(root / "chat")),
            "pair": str(rm_models.pair_rm(root / "pair")),
            "multi": str(rm_models.multi_rm(root / "multi"))}


def direct(path: str, conv: str, prompt: str, response: str, hidden: bool = False):
    """One unbatched, unpadded forward pass, written out with transformers alone."""
    import torch
    import transformers

    tok = transformers.AutoTokenizer.from_pretrained(path)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(path).eval()
    if conv == "chat":
        text = tok.apply_chat_template([{"role": "user", "content": prompt},
                                        {"role": "assistant", "content": response}], tokenize=False)
        enc = tok(text, add_special_tokens=False, return_tensors="pt")
    else:
        enc = tok(prompt, response, return_tensors="pt")
    with torch.inference_mode():
        out = model(**enc, output_hidden_states=True)
    if not hidden:
        return out.logits[0].numpy()
    ids = enc["input_ids"][0]
    at = 0 if conv == "pair" else int(np.nonzero((ids != model.config.pad_token_id).numpy())[0][-1])
    return out.hidden_states[-1][0, at].numpy()


@pytest.mark.parametrize("conv", ["chat", "pair"])
def test_batched_scores_equal_a_direct_forward_pass(models, conv):
    got = reward_model.run(PROMPTS, RESPONSES, models[conv], batch_size=2)
    tok, _ = reward_model.load(models[conv])
    assert reward_model.convention(tok) == conv  # auto picks the convention from the tokenizer
    want = np.stack([direct(models[conv], conv, p, r) for p, r in zip(PROMPTS, RESPONSES)])
    assert got.shape == (3, 1)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    assert len(set(np.round(got[:, 0], 5))) == 3  # a real signal, not one constant


@pytest.mark.parametrize("conv", ["chat", "pair"])
def test_hidden_state_is_what_the_reward_head_reads(models, conv):
    got = reward_model.run(PROMPTS, RESPONSES, models[conv], batch_size=3, hidden=True)
    want = np.stack([direct(models[conv], conv, p, r, hidden=True)
                     for p, r in zip(PROMPTS, RESPONSES)])
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("conv", ["chat", "pair"])
def test_an_overlong_response_loses_its_middle_with_the_visible_marker(models, conv):
    tok, _ = reward_model.load(models[conv])
    response = "HEADWORDS " + "filler text " * 400 + " TAILWORDS"
    enc = reward_model.encode_one(tok, "Prompt?", response, conv, 128, MARKER)
    assert len(enc["input_ids"]) <= 128
    text = tok.decode(enc["input_ids"])
    assert "cut" in text and "characters" in text  # the judge's marker, visible to the model
    assert "head" in text.lower() and "tail" in text.lower()
    short = reward_model.encode_one(tok, "Prompt?", "short", conv, 128, MARKER)
    assert "cut" not in tok.decode(short["input_ids"])


def test_batches_cover_every_input_once_sorted_by_length():
    lengths = [5, 1, 9, 3, 7, 2, 8]
    parts = reward_model.batches(lengths, 3)
    flat = np.concatenate(parts)
    assert sorted(flat.tolist()) == list(range(7)) and all(len(p) <= 3 for p in parts)
    assert [lengths[i] for i in flat] == sorted(lengths)


def test_multi_head_models_expose_their_aspects(models):
    assert reward_model.aspects(models["multi"]) == rm_models.ASPECTS
    cfg = OracleConfig(name="reward_model", rm=RewardModelConfig(model=models["multi"],
                                                                 aspect="correctness"))
    oracle = make_oracle(cfg, has_gold=False)
    task = JudgeTask("p0", PROMPTS[1], ("a", "b"), (RESPONSES[1], RESPONSES[0]))
    answers = list(oracle.send(oracle.plan(task)))
    raw = json.loads(answers[0].raw)
    assert set(raw["aspects"]) == set(rm_models.ASPECTS)
    assert answers[0].value == pytest.approx(raw["aspects"]["correctness"])
    assert head_index(rm_models.ASPECTS, "mean") is None
    with pytest.raises(ConfigError, match="heads are helpfulness"):
        head_index(rm_models.ASPECTS, "harmlessness")


def test_keys_change_with_the_text_and_the_model(models):
    cfg = OracleConfig(name="reward_model", rm=RewardModelConfig(model=models["chat"]))
    oracle = make_oracle(cfg, has_gold=False)
    other = make_oracle(OracleConfig(name="reward_model", rm=RewardModelConfig(
        model=models["pair"])), has_gold=False)
    task = JudgeTask("p0", "Q", ("a", "b"), ("one", "two"))
    edited = JudgeTask("p0", "Q", ("a", "b"), ("one!", "two"))
    keys = [r.key for r in oracle.plan(task)]
    assert keys[1] == oracle.plan(edited)[1].key and keys[0] != oracle.plan(edited)[0].key
    assert not set(keys) & {r.key for r in other.plan(task)}


def _pool(path, n=6, r=4):
    rng = np.random.default_rng(0)
    rows = [{"prompt": f"Question {i}: name a colour.",
             **{f"m{j}": "word " * int(rng.integers(1, 30)) + f"colour {j}" for j in range(r)}}
            for i in range(n)]
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _aeuf(*args):
    r = subprocess.run([sys.executable, "-m", "aeuf", *map(str, args), "--no_progress"],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    return r


def test_aepo_workflow_end_to_end_and_a_rerun_scores_nothing(models, tmp_path):
    pool = _pool(tmp_path / "pool.csv")
    out = tmp_path / "run"
    args = [pool, "--num_responses", 4, "--num_annotations", 2, "--oracle", "reward_model",
            "--reward_model", models["chat"], "--output_dir", out, "--features", "stats"]
    first = _aeuf(*args)
    assert "6 of 6 prompts labelled" in first.stderr, first.stderr
    lines = (out / "judgements.jsonl").read_text().splitlines()
    assert len(lines) == 6 * 2 and all(json.loads(x)["judge"] == "reward_model" for x in lines)
    rows = pd.read_json(out / "preferences.jsonl", lines=True)
    assert len(rows) == 6 and (rows["chosen_score"] > rows["rejected_score"]).all()
    assert "s on cpu" in first.stderr  # the summary's hygiene line: seconds and device
    card = (out / "hf" / "README.md").read_text()
    assert "a reward model (sequence classifier)" in card and "rms0" in card  # names the model
    hygiene = json.loads((out / "judge_hygiene.json").read_text())
    assert any(h["device"] == "cpu" and h["seconds"] > 0 for h in hygiene.values())
    second = _aeuf(*args)
    assert "(0 sent now)" in second.stderr, second.stderr
    assert (out / "judgements.jsonl").read_text().splitlines() == lines


class _ScoreServer(BaseHTTPRequestHandler):
    """vLLM's pooling and score endpoints over the test's own model (scores from
    reward_model.run, the code under test being the client)."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        path = self.server.models["pooling" if self.path.endswith("/pooling") else "score"]
        if self.path.endswith("/pooling"):
            user, assistant = body["messages"]
            s = reward_model.run([user["content"]], [assistant["content"]], path)[0, 0]
            data = {"data": [{"index": 0, "data": [float(s)]}]}
        else:
            s = reward_model.run(body["text_1"], body["text_2"], path)[:, 0]
            data = {"data": [{"index": i, "score": float(v)} for i, v in enumerate(s)][::-1]}
        blob = json.dumps(data).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(blob)))
        self.end_headers()
        self.wfile.write(blob)


@pytest.fixture
def score_server(models):
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _ScoreServer)
    httpd.models = {"pooling": models["chat"], "score": models["pair"]}
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}/v1"
    httpd.shutdown()
    httpd.server_close()


FAULTS = ["500", "429", "garbage", "cut", "truncated", "ok", "500", "ok", "ok", "ok"]


@pytest.mark.parametrize("endpoint,local", [("pooling", "chat"), ("score", "pair")])
def test_served_scores_equal_local_ones_through_server_faults(models, score_server, fault_proxy,
                                                              endpoint, local):
    from aeuf.backends import rm_http

    proxy = fault_proxy(score_server, plan=lambda n, body: FAULTS[(n - 1) % len(FAULTS)])
    client = rm_http.Client(proxy.base_url, "served-rm", endpoint, timeout=20, retries=6,
                            concurrency=1, backoff=0.01)
    got = client.score(PROMPTS, RESPONSES, batch_size=2)
    want = reward_model.run(PROMPTS, RESPONSES, models[local])
    np.testing.assert_allclose(got, want, rtol=1e-5)
    assert proxy.faults["500"] >= 1 and proxy.faults["cut"] == 1


def test_a_server_that_hangs_is_bounded_and_becomes_a_transport_failure(models, score_server,
                                                                       fault_proxy):
    proxy = fault_proxy(score_server, plan=lambda n, body: "hang", slow_seconds=3.0)
    cfg = OracleConfig(name="reward_model", rm=RewardModelConfig(
        model="served-rm", base_url=proxy.base_url, timeout=0.5, retries=1))
    oracle = make_oracle(cfg, has_gold=False)
    task = JudgeTask("p0", "Q", ("a", "b"), ("one", "two"))
    answers = list(oracle.send(oracle.plan(task)))
    assert [a.value for a in answers] == [None, None]
    assert all(a.error.startswith("transport:") for a in answers)  # asked again on a rerun
    oracle.close()


def test_features_rm_is_the_reward_models_hidden_state_cached_by_content(models, tmp_path):
    from aeuf import embed, io
    from aeuf.config import FeatureConfig, InputConfig
    from aeuf.run.featurize import cached_encode

    path = _pool(tmp_path / "pool.csv", n=3)
    pool = io.read_pool(InputConfig(path=str(path), num_responses=4))
    cfg = FeatureConfig(features="rm", rm_encoder=models["pair"])
    part = embed.PARTS.get("rm")
    got, fresh = cached_encode(part.texts(pool), part, cfg, tmp_path / "cache", progress=False)
    again, none = cached_encode(part.texts(pool), part, cfg, tmp_path / "cache", progress=False)
    P, R = pool.shape
    want = reward_model.run([pool.prompts[p] for p in range(P) for _ in range(R)],
                            [pool.responses[p, r] for p in range(P) for r in range(R)],
                            models["pair"], hidden=True)
    assert (fresh, none) == (P * R, 0)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(again, got)


def test_reward_model_flag_feeds_the_rm_feature_part(models, tmp_path):
    out = tmp_path / "run"
    _aeuf(_pool(tmp_path / "pool.csv", n=3), "--num_responses", 4, "--features", "rm+stats",
          "--reward_model", models["pair"], "--oracle", "none", "--output_dir", out)
    saved = json.loads((out / "config.json").read_text())
    assert saved["features"]["rm_encoder"] == models["pair"]


def _config(**oracle):
    from aeuf.config import FeatureConfig, RunConfig

    features = oracle.pop("features", "minilm+stats")
    return RunConfig(oracle=OracleConfig(**oracle), features=FeatureConfig(features=features))


def test_reward_model_flags_without_their_oracle_are_refused():
    from aeuf.run.checks import ineffective

    rm = RewardModelConfig(model="some/rm", batch_size=4)
    assert "--rm_batch_size has no effect" in ineffective(_config(name="judge", rm=rm), "judge")
    only_model = RewardModelConfig(model="some/rm")
    assert "--reward_model has no effect" in ineffective(_config(rm=only_model), "replay")
    assert ineffective(_config(rm=only_model, features="rm"), "replay") is None
    assert "needs --reward_model" in ineffective(_config(name="reward_model"), "reward_model")
    assert ineffective(_config(name="reward_model", rm=rm, label_mode="soft"),
                       "reward_model") is None


@pytest.mark.gpu
@pytest.mark.parametrize("conv", ["chat", "pair"])
def test_on_a_gpu_scores_match_the_cpu_within_bfloat16(models, conv):
    """On a GPU the reward model runs in bfloat16: its scores follow the CPU's float32 ones."""
    import torch

    from aeuf.backends import hf_models

    cpu = np.stack([direct(models[conv], conv, p, r) for p, r in zip(PROMPTS, RESPONSES)])
    reward_model.load.cache_clear()
    assert hf_models.device() == "cuda" and torch.cuda.is_available()
    gpu = reward_model.run(PROMPTS, RESPONSES, models[conv], batch_size=2)
    np.testing.assert_allclose(gpu, cpu, rtol=0.05, atol=0.05)
