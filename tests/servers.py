"""Real servers for tests (pytest fixtures; load with `pytest_plugins = ["servers"]`).

llama_server  session-scoped `python -m llama_cpp.server` on the packaged SmolLM2 GGUF, on a
              free 127.0.0.1 port (installs llama-cpp-python[server] first if it is missing,
              set AEUF_NO_INSTALL=1 to skip instead).
fault_proxy   factory: FaultProxy(upstream, plan) between a client and a server; `plan(n,
              body)` names the fault for the n-th request: ok, 400, 429 (retry-after-ms 300),
              500, slow (answers after slow_seconds), hang (closes after slow_seconds), cut,
              garbage, truncated, empty_choices, refusal, nonsense (a valid completion with no
              answer in it). It counts the 200 answers it delivered per request body.
fake_batch    factory: a small fake of the OpenAI Files + Batches endpoints whose batches
              run each line against a real upstream server (llama.cpp has no Batch API).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

FAULTS = ("ok", "400", "429", "500", "slow", "hang", "cut", "garbage", "truncated", "empty_choices", "refusal",
          "nonsense")


def _ensure_llama_cpp() -> None:
    if importlib.util.find_spec("llama_cpp") is not None:
        return
    if os.environ.get("AEUF_NO_INSTALL"):
        pytest.skip("llama-cpp-python is not installed (AEUF_NO_INSTALL set)")
    done = subprocess.run([sys.executable, "-m", "pip", "install", "llama-cpp-python[server]"],
                          capture_output=True, text=True)
    importlib.invalidate_caches()
    if done.returncode != 0 or importlib.util.find_spec("llama_cpp") is None:
        pytest.skip(f"could not install llama-cpp-python[server]: {done.stderr[-300:]}")


@pytest.fixture(scope="session")
def llama_server():
    """A running LlamaServer (base_url, model='smollm2', ...) for the whole session."""
    _ensure_llama_cpp()
    from aeuf.backends import llama_server as ls

    server = ls.start(alias="smollm2", n_ctx=2048)
    yield server
    server.stop()


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


def _canned(fault: str) -> tuple[int, bytes, dict]:
    choice = {"index": 0, "finish_reason": "stop",
              "message": {"role": "assistant", "content": None, "refusal": "I can't help."}}
    text = {"index": 0, "finish_reason": "stop",
            "message": {"role": "assistant", "content": "I like turtles."}}
    return {
        "nonsense": (200, json.dumps({"choices": [text], "usage": {"prompt_tokens": 10,
                                                                   "completion_tokens": 4}}).encode(), {}),
        "429": (429, b'{"error": {"message": "slow down"}}', {"retry-after-ms": "300"}),
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
        fault = proxy.next_fault(body)
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
        self.reply(*_canned(fault))


class FaultProxy(_Server):
    """Forwards /v1/* to `upstream` (a base URL ending in /v1), injecting faults."""

    def __init__(self, upstream: str, plan=None, slow_seconds: float = 3.0) -> None:
        self.upstream, self.plan, self.slow_seconds = upstream, plan or (lambda n, b: "ok"), \
            slow_seconds
        self.lock, self.n = threading.Lock(), 0
        self.faults: Counter = Counter()
        self.answers: Counter = Counter()  # body hash -> 200 answers delivered
        self.seen: list[tuple[str, bytes]] = []  # (fault, body) of every request, in order
        super().__init__(_ProxyHandler)

    def next_fault(self, body: bytes) -> str:
        with self.lock:
            self.n += 1
            fault = self.plan(self.n, body)
            self.faults[fault] += 1
            self.seen.append((fault, body))
            return fault

    def delivered(self, body: bytes, status: int) -> None:
        if status == 200:
            with self.lock:
                self.answers[hashlib.sha256(body).hexdigest()] += 1


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
        api, parts = self.server.owner, self.path.split("?")[0].strip("/").split("/")
        if parts[1:] == ["batches"]:
            return self.reply(200, json.dumps({"object": "list", "data": list(
                api.batches.values()), "has_more": False}).encode())
        if len(parts) == 3 and parts[1] == "batches" and parts[2] in api.batches:
            return self.reply(200, json.dumps(api.batches[parts[2]]).encode())
        if len(parts) == 4 and parts[3] == "content" and parts[2] in api.files:
            return self.reply(200, api.files[parts[2]], {"Content-Type": "application/jsonl"})
        self.reply(404, b'{"error": {"message": "not found"}}')

    def do_POST(self) -> None:
        api, path, body = self.server.owner, self.path.strip("/"), self.body()
        if path == "v1/files":
            msg = BytesParser().parsebytes(
                f"Content-Type: {self.headers['Content-Type']}\r\n\r\n".encode() + body)
            part = next(p for p in msg.get_payload() if p.get_param("name", header="content-disposition") == "file")
            return self.reply(200, json.dumps(api.add_file(part.get_payload(decode=True))).encode())
        if path == "v1/batches":
            return self.reply(200, json.dumps(api.create(json.loads(body))).encode())
        self.reply(404, b'{"error": {"message": "not found"}}')


class FakeBatchAPI(_Server):
    """Files + Batches endpoints in memory; each batch runs in a thread against `upstream`."""

    def __init__(self, upstream: str, fail_lines=()) -> None:
        self.upstream, self.fail_lines = upstream, set(fail_lines)
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, dict] = {}
        self.lines_run: Counter = Counter()  # (custom_id, temperature) -> times executed
        self.hold: threading.Event | None = None  # set: batches wait for it before running
        self.lock = threading.Lock()
        super().__init__(_BatchHandler)

    def add_file(self, data: bytes) -> dict:
        with self.lock:
            fid = f"file-{len(self.files) + 1}"
            self.files[fid] = data
        return {"id": fid, "object": "file", "bytes": len(data), "created_at": 0,
                "filename": fid, "purpose": "batch", "status": "processed"}

    def create(self, req: dict) -> dict:
        with self.lock:
            bid = f"batch-{len(self.batches) + 1}"
            self.batches[bid] = {"id": bid, "object": "batch", "endpoint": req["endpoint"],
                                 "input_file_id": req["input_file_id"], "status": "in_progress",
                                 "completion_window": "24h", "created_at": 0,
                                 "metadata": req.get("metadata"), "output_file_id": None,
                                 "error_file_id": None}
        threading.Thread(target=self.execute, args=(bid,), daemon=True).start()
        return self.batches[bid]

    def execute(self, bid: str) -> None:
        batch, out = self.batches[bid], []
        if self.hold is not None:
            self.hold.wait()
        for line in self.files[batch["input_file_id"]].decode().splitlines():
            item = json.loads(line)
            self.lines_run[item["custom_id"], item["body"].get("temperature")] += 1
            status, data = (500, b'{"error": "x"}') if item["custom_id"] in self.fail_lines \
                else _forward(self.upstream + item["url"][3:], json.dumps(item["body"]).encode())
            out.append(json.dumps({"id": f"r-{len(out)}", "custom_id": item["custom_id"],
                                   "response": {"status_code": status, "body": json.loads(data)},
                                   "error": None}))
        batch["output_file_id"] = self.add_file(("\n".join(out) + "\n").encode())["id"]
        batch["status"] = "completed"


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
