"""Issue 24, the judge's items, through the real command line and real servers on 127.0.0.1:
`aeuf judge --dry_run` sends and writes nothing, --max_requests caps it; a response too long for the judge's context
cannot win on what the judge was not shown (--judge_overlong), and the cut is recorded;
--judge_timeout bounds a request's whole time; Ctrl-C keeps the answers in flight."""

import json
import os
import signal
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from killing import kill_after_lines, log_lines

pytest_plugins = ["servers"]

ROWS = [{"prompt_id": "a1", "prompt": "Name a colour.", "response_ids": ["a1:0", "a1:1"],
         "responses": ["good answer: blue.", "poor answer: a number."]},
        {"prompt_id": "a2", "prompt": "Add 3 and 3.", "response_ids": ["a2:0", "a2:1"],
         "responses": ["fair: six.", "excellent: 6."]}]
# 1 MB: an excellent start and end, the damning part in the middle
HUGE = ("excellent answer, clear and complete. " * 200 + "TERRIBLE: this part is false and "
        "harmful. " * 25_000 + " excellent ending, well argued." * 200)


def aeuf(*args, timeout=600):
    env = os.environ | {"HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "aeuf", *args], capture_output=True,
                          text=True, env=env, timeout=timeout)


def write_rows(folder, rows):
    path = folder / "annotations.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def judge_args(path, url, *extra):
    return ["judge", str(path), "--judge_base_url", url, "--judge_model", "honest",
            "--judge_context", "4096", "--judge_max_tokens", "64", "--no_progress", *extra]


def test_judge_dry_run_sends_and_writes_nothing(honest_judge, tmp_path):
    judge = honest_judge(context=4096)
    path = write_rows(tmp_path, ROWS)
    dry = aeuf(*judge_args(path, judge.base_url, "--dry_run"))
    assert dry.returncode == 0, dry.stderr
    assert judge.requests == {}  # nothing sent
    assert sorted(p.name for p in tmp_path.iterdir()) == ["annotations.jsonl"]  # nor written
    assert "4 requests" in dry.stdout and "0 already answered" in dry.stdout
    capped = aeuf(*judge_args(path, judge.base_url, "--max_requests", "1"))  # the run's cap
    assert capped.returncode == 0 and "stopped at the budget" in capped.stderr, capped.stderr
    assert len((tmp_path / "judgements.jsonl").read_text().splitlines()) == 1
    assert aeuf(*judge_args(path, judge.base_url)).returncode == 0
    sent, files = dict(judge.requests), sorted(p.name for p in tmp_path.iterdir())
    again = aeuf(*judge_args(path, judge.base_url, "--dry_run"))
    assert "0 requests" in again.stdout and "4 already answered" in again.stdout
    assert judge.requests == sent and sorted(p.name for p in tmp_path.iterdir()) == files


def judged(folder):
    return {x["prompt_id"]: x for x in map(json.loads, (folder / "judged.jsonl").read_text()
                                           .splitlines())}


@pytest.mark.parametrize("template", ["overall", "pairwise"])
def test_a_response_the_judge_cannot_read_whole_cannot_win(honest_judge, tmp_path, template):
    """The 1 MB response starts and ends excellent (an honest judge shown its head and tail
    rates it 5, as --judge_overlong cut shows); by default it is never sent and loses to
    the fair response, and the cut is in the ledger and judged.jsonl."""
    rows = [{"prompt_id": "h", "prompt": "Explain tides.", "response_ids": ["h:0", "h:1"],
             "responses": ["fair answer: the moon pulls the sea.", HUGE]}]
    for mode, chosen in [("loss", "h:0"), ("skip", None), ("cut", "h:1")]:
        folder = tmp_path / mode
        folder.mkdir()
        judge = honest_judge(context=4096)
        done = aeuf(*judge_args(write_rows(folder, rows), judge.base_url, "--judge_template",
                                template, "--judge_overlong", mode))
        assert done.returncode == 0, done.stderr
        line = judged(folder)["h"]
        assert line["cut"] == ["h:1"] and line["chosen_id"] == chosen, (mode, line)
        log = log_lines(folder / "judgements.jsonl")
        assert log and all(x["cut"] == ["h:1"] for x in log if "h:1" in x["response_ids"])
        biggest = max(len(p) for p in judge.prompts) if judge.prompts else 0
        assert biggest < 40_000  # the 1 MB text itself was never sent
        if mode == "cut":  # the judge was shown the cut and told it gets no credit
            assert any("aeuf cut" in p for p in judge.prompts)
            assert all("not a defect" not in p for p in judge.prompts)
            assert "give no credit" in judge.prompts[0]
        else:  # nothing with the huge response was sent; its requests logged as not sent
            assert all("TERRIBLE" not in p and "excellent answer, clear" not in p
                       for p in judge.prompts)
            held = [x for x in log if "h:1" in x["response_ids"]]
            assert held and all(x["error"].startswith("overlong:") and x["cost"] == 0
                                for x in held)
            assert f"{1 if template == 'overall' else 0} requests sent now" in done.stderr


class _Trickle(BaseHTTPRequestHandler):
    """Answers a chat completion with a valid body, one byte every `gap` seconds."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args) -> None:
        pass

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        body = json.dumps({"id": "t", "object": "chat.completion", "choices": [
            {"index": 0, "finish_reason": "stop",
             "message": {"role": "assistant", "content": "Rating: 4"}}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 3}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        owner = self.server.owner
        try:
            for i in range(len(body)):
                self.wfile.write(body[i:i + 1])
                self.wfile.flush()
                time.sleep(owner.gap)  # the server trickles; the test itself never waits
            owner.finished += 1
        except OSError:
            pass


class TrickleServer:
    def __init__(self, gap: float) -> None:
        self.gap, self.finished = gap, 0
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Trickle)
        self.httpd.daemon_threads, self.httpd.owner = True, self
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def test_the_timeout_bounds_a_whole_request_against_a_trickling_server():
    """Each byte comes well within the timeout, the whole body (about 200 bytes at 0.1 s)
    would take 20 s: the request ends as a timeout while the server is still sending."""
    from aeuf.backends.openai_client import ClientSettings, open_client

    server = TrickleServer(gap=0.1)
    try:
        client = open_client(ClientSettings(base_url=server.base_url, timeout=1.0, retries=0))
        result = client.complete({"model": "m", "messages": [{"role": "user", "content": "hi"}],
                                  "max_tokens": 4})
        client.close()
        assert result.text is None and "timeout" in result.error, result
        assert server.finished == 0  # it gave up before the server was done
    finally:
        server.stop()


def test_ctrl_c_keeps_the_answers_in_flight_and_a_rerun_pays_for_nothing_twice(
        honest_judge, fault_proxy, tmp_path):
    rows = [{"prompt_id": f"c{i}", "prompt": f"Question {i}?",
             "response_ids": [f"c{i}:{j}" for j in range(4)],
             "responses": [f"{w} answer {i}." for w in ("good", "poor", "fair", "excellent")]}
            for i in range(6)]
    path = write_rows(tmp_path, rows)
    judge = honest_judge(context=4096)
    proxy = fault_proxy(judge.base_url, lambda n, b: "slow", slow_seconds=0.5)
    args = judge_args(path, proxy.base_url, "--judge_concurrency", "4")
    log = tmp_path / "judgements.jsonl"
    env = os.environ | {"HF_HUB_OFFLINE": "1"}
    kill_after_lines([sys.executable, "-m", "aeuf", *args], log, lines=2, env=env,
                     sig=signal.SIGINT, expect=130)
    kept = log_lines(log)
    assert 2 <= len(kept) < 24
    assert proxy.n == len(kept)  # every request the server got (and answered) is logged
    assert aeuf(*args).returncode == 0
    assert len(log_lines(log)) == 24 and proxy.n == 24  # the rest, each once


def test_the_main_command_marks_the_cut_in_rows_report_and_card(honest_judge, tmp_path):
    import pandas as pd

    from aeuf.cli import main

    words = ["good", "poor", "fair", "excellent", "terrible", "good"]
    rows = [{"instruction": f"Question {p}?", "response_0": f"{words[p]} answer {p}.",
             "response_1": HUGE if p == 0 else f"{words[-1 - p]} reply {p}."} for p in range(6)]
    pd.DataFrame(rows).to_csv(tmp_path / "pool.csv", index=False)
    judge, out = honest_judge(context=4096), tmp_path / "run"
    code = main([str(tmp_path / "pool.csv"), "--num_responses", "2", "--num_annotations", "2",
                 "--oracle", "judge", "--judge_base_url", judge.base_url, "--judge_model",
                 "honest", "--judge_context", "4096", "--judge_max_tokens", "64",
                 "--output_dir", str(out), "--features", "stats", "--members", "4",
                 "--hidden", "16,16", "--epochs", "3", "--batch_size", "6", "--no_progress"])
    assert code == 0
    exported = [json.loads(x) for x in (out / "preferences.jsonl").read_text().splitlines()]
    huge = [r for r in exported if r["rejected"] == HUGE or r["chosen"] == HUGE]
    assert len(huge) == 1 and huge[0]["rejected"] == HUGE and huge[0]["cut"] == "rejected"
    assert all(r["cut"] == "" for r in exported if r is not huge[0])
    assert "too long for the judge | 1 " in (out / "report.md").read_text()
    assert "too long for the judge to read whole (`cut`) | 1 |" in \
        (out / "hf" / "README.md").read_text()
