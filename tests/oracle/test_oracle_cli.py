"""`aeuf judge FILE` through the real command line, against the real llama.cpp server."""

import json
import os
import subprocess
import sys

import pytest

pytest_plugins = ["servers"]

SECRET = "sk-cli-test-31415926535-secret"
ROWS = [{"prompt_id": "a1", "prompt": "What colour is the sky?", "response_ids": ["a1:0", "a1:1"],
         "responses": ["Blue.", "Green, obviously."]},
        {"prompt_id": "a2", "prompt": "What is 3 + 3?", "response_ids": ["a2:0", "a2:1"],
         "responses": ["6", "33"]}]


def aeuf(*args, stdin=None):
    env = os.environ | {"OPENAI_API_KEY": SECRET, "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "aeuf", *args], capture_output=True, text=True,
                          env=env, input=stdin, timeout=600)


@pytest.fixture
def annotations(tmp_path):
    path = tmp_path / "annotations.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
    return path


@pytest.mark.server
def test_judge_command_logs_resumes_and_keeps_the_key_out(llama_server, fault_proxy, annotations):
    proxy = fault_proxy(llama_server.base_url)
    args = [str(annotations), "--judge_base_url", proxy.base_url, "--judge_model", "smollm2",
            "--judge_max_tokens", "16", "--no_progress"]
    done = aeuf("judge", *args)
    assert done.returncode == 0, done.stderr
    folder = annotations.parent
    log = [json.loads(x) for x in (folder / "judgements.jsonl").read_text().splitlines()]
    assert len(log) == 4 and len({x["key"] for x in log}) == 4
    judged = [json.loads(x) for x in (folder / "judged.jsonl").read_text().splitlines()]
    assert [j["prompt_id"] for j in judged] == ["a1", "a2"]
    sent = proxy.n
    again = aeuf("judge", *args)
    assert again.returncode == 0 and proxy.n == sent  # nothing asked twice
    assert "0 requests sent now" in again.stderr
    for f in folder.rglob("*"):
        assert not f.is_file() or SECRET not in f.read_text(errors="replace")
    assert SECRET not in done.stderr + done.stdout
    assert SECRET not in "".join(proxy.auth)  # a server on this machine never gets the key


@pytest.mark.server
def test_a_key_sent_on_purpose_is_scrubbed_from_echoed_errors(llama_server, fault_proxy,
                                                              annotations, tmp_path):
    """With --judge_send_key_to_local the key travels; the proxy answers the first requests
    with a 401 quoting it. The run ends, the failures are logged, and the key is nowhere."""
    proxy = fault_proxy(llama_server.base_url, lambda n, b: "401" if n <= 2 else "ok")
    out = tmp_path / "keyed"
    done = aeuf("judge", str(annotations), "--judge_base_url", proxy.base_url,
                "--judge_model", "smollm2", "--judge_max_tokens", "16", "--no_progress",
                "--judge_send_key_to_local", "--judge_answer_format", "json_object",
                "--judge_concurrency", "1", "--output_dir", str(out))
    assert done.returncode == 0, done.stderr
    assert f"Bearer {SECRET}" in proxy.auth
    log = [json.loads(x) for x in (out / "judgements.jsonl").read_text().splitlines()]
    failed = [x for x in log if (x["error"] or "").startswith("transport: http 401")]
    assert len(failed) == 2 and all("Incorrect API key provided" in x["error"] for x in failed)
    for f in out.rglob("*"):
        assert not f.is_file() or SECRET not in f.read_text(errors="replace")
    assert SECRET not in done.stderr + done.stdout


def test_human_judging_from_the_terminal(annotations, tmp_path):
    out = tmp_path / "human"
    done = aeuf("judge", str(annotations), "--oracle", "human", "--output_dir", str(out),
                stdin="a\nq\n")
    assert done.returncode == 1 and "stopped at your request" in done.stderr  # resumable
    assert "Better? [a / b / tie / skip / undo / quit]" in done.stdout
    assert len((out / "judgements.jsonl").read_text().splitlines()) == 1
    done = aeuf("judge", str(annotations), "--oracle", "human", "--output_dir", str(out),
                stdin="tie\n")
    assert done.returncode == 0, done.stderr
    judged = [json.loads(x) for x in (out / "judged.jsonl").read_text().splitlines()]
    assert len((out / "judgements.jsonl").read_text().splitlines()) == 2
    assert sum(len(j["pairs"]) for j in judged) == 2


def test_bad_input_is_one_line_error(tmp_path, annotations):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt_id": "x", "responses": ["a", "b"]}\n')
    done = aeuf("judge", str(bad), "--oracle", "human")
    assert done.returncode == 1 and "line 1 is not an annotation record" in done.stderr
    assert "Traceback" not in done.stderr
    nothing = aeuf("judge", str(annotations))
    assert nothing.returncode == 1 and "nothing to judge with" in nothing.stderr
