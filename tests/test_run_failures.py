"""A run never reports success it did not have: an unreachable judge stops the run with one
line naming it, a run that labels nothing exits non-zero with the reason, and unparsable
answers are asked again only when the user says so."""

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from aeuf.cli import main

sys.path.insert(0, str(Path(__file__).parent))
from test_loop import FAST, P, _write_pool  # noqa: E402


class ChatStub:
    """A real HTTP server on 127.0.0.1 speaking the OpenAI chat-completions API, whose every
    reply is the same text (a judge that never gives a verdict). Counts requests."""

    def __init__(self, reply: str) -> None:
        stub = self
        self.requests = 0

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                stub.requests += 1
                body = json.dumps({
                    "id": "x", "object": "chat.completion", "created": 0, "model": "stub",
                    "choices": [{"index": 0, "finish_reason": "stop",
                                 "message": {"role": "assistant", "content": reply}}],
                    "usage": {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13}})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body.encode())

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def close(self):
        self.httpd.shutdown()


@pytest.fixture
def stub():
    s = ChatStub("I would rather not say.")
    yield s
    s.close()


def _judge_run(pool, out, url, *extra):
    return main([str(pool), "--output_dir", str(out), "--oracle", "judge", "--judge_base_url", url,
                 "--judge_model", "stub", "--judge_logprobs", *FAST, *extra])


def test_an_unreachable_judge_stops_the_run_naming_it(tmp_path, capsys):
    pool = _write_pool(tmp_path / "pool.csv", gold=False)
    url = "http://127.0.0.1:1/v1"
    assert _judge_run(pool, tmp_path / "run", url, "--judge_retries", "0") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot be reached" in err[0] and url in err[0]
    assert not (tmp_path / "run" / "preferences.jsonl").exists()
    log = (tmp_path / "run" / "judgements.jsonl").read_text().splitlines()
    assert len(log) == 8  # it stopped after the run of failures, not after every prompt


def test_a_run_that_labels_nothing_fails_and_says_why(tmp_path, capsys, stub):
    pool = _write_pool(tmp_path / "pool.csv", gold=False)
    out = tmp_path / "run"
    assert _judge_run(pool, out, stub.base_url, "--budget", "6") == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no prompt got a usable label" in err[0]
    assert "unparsable" in err[0] and "--retry_unparsable" in err[0] and "judgements.jsonl" in err[0]
    assert "unparsable" in (out / "report.md").read_text()
    asked = stub.requests
    assert asked >= 12  # 6 prompts x 2 responses, each retried once when unparsable
    assert _judge_run(pool, out, stub.base_url, "--budget", "6") == 1
    assert stub.requests == asked  # paid unparsable answers are final ...
    assert _judge_run(pool, out, stub.base_url, "--budget", "6", "--retry_unparsable") == 1
    assert stub.requests > asked  # ... unless the user asks again
    assert P > 6
