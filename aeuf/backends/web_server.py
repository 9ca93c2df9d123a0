"""The web oracle's HTTP server: a small Starlette app run by uvicorn in a background thread.

It knows nothing of pairs or ledgers: it checks the token, serves the page's static files,
and hands JSON to an `api` object (see aeuf.oracle.web):

    api.who(token) -> annotator name or None      (a wrong or missing token: 403, no data)
    api.state(who) -> JSON-ready dict
    api.answer(who, body: dict) -> receipt or None;  api.undo(who) -> receipt or None

A receipt's wait() -> bool blocks until the answer is fsync'd in the run's ledger (True) or
the run stopped first (False); only then does the POST reply. Every reply carries a strict
Content-Security-Policy (no inline script, no images, no framing) and no-store/no-referrer.
"""

from __future__ import annotations

import secrets
import socket
import threading
from pathlib import Path
from typing import Any

from aeuf.errors import MissingExtra

CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'none'; "
       "connect-src 'self'; font-src 'none'; object-src 'none'; media-src 'none'; "
       "frame-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
           "Referrer-Policy": "no-referrer", "Cache-Control": "no-store",
           "X-Frame-Options": "DENY"}
STATIC = {"app.js": "text/javascript", "style.css": "text/css"}


class WebServer:
    """A running server: `url` (http://host:port), stop()."""

    def __init__(self, server: Any, thread: threading.Thread, host: str, port: int):
        self._server, self._thread = server, thread
        self.host, self.port = host, port
        self.url = f"http://{host if ':' not in host else f'[{host}]'}:{port}"

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


def make_app(api: Any, page: Path):
    """The Starlette app: / (the page), /static/<file>, /api/state, /api/answer, /api/undo."""
    try:
        import uvicorn  # noqa: F401
        from starlette.applications import Starlette
        from starlette.concurrency import run_in_threadpool
        from starlette.responses import JSONResponse, Response
        from starlette.routing import Route
    except ImportError as err:
        raise MissingExtra("--oracle web needs the web extra: pip install -e \".[web]\"") from err

    files = {name: (page / name).read_bytes() for name in [*STATIC, "index.html"]}

    def deny() -> Response:
        return Response("forbidden\n", status_code=403, media_type="text/plain", headers=HEADERS)

    def who(request) -> str | None:
        token = request.headers.get("x-token") or request.query_params.get("token") or ""
        return api.who(token)

    async def index(request):
        if who(request) is None:
            return deny()
        return Response(files["index.html"], media_type="text/html", headers=HEADERS)

    async def static(request):
        name = request.path_params["name"]
        if name not in STATIC:
            return Response("not found\n", status_code=404, headers=HEADERS)
        return Response(files[name], media_type=STATIC[name], headers=HEADERS)

    async def state(request):
        name = who(request)
        if name is None:
            return deny()
        return JSONResponse(await run_in_threadpool(api.state, name), headers=HEADERS)

    async def post(request, act: str):
        name = who(request)
        if name is None:
            return deny()
        try:
            body = await request.json()
        except ValueError:
            body = None
        receipt = (api.answer(name, body if isinstance(body, dict) else {}) if act == "answer"
                   else api.undo(name))
        saved = None if receipt is None else await run_in_threadpool(receipt.wait)
        return JSONResponse({"saved": saved, **(await run_in_threadpool(api.state, name))},
                            headers=HEADERS)

    async def answer(request):
        return await post(request, "answer")

    async def undo(request):
        return await post(request, "undo")

    return Starlette(routes=[Route("/", index), Route("/static/{name}", static),
                             Route("/api/state", state),
                             Route("/api/answer", answer, methods=["POST"]),
                             Route("/api/undo", undo, methods=["POST"])])


def start(api: Any, page: Path, host: str, port: int) -> WebServer:
    """Serve the app on host:port (0: a free port) in a daemon thread; returns once it
    listens."""
    app = make_app(api, page)
    import uvicorn  # present: make_app checked the web extra

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True,
                              name=f"aeuf-web-{secrets.token_hex(2)}")
    thread.start()
    while not server.started and thread.is_alive():
        threading.Event().wait(0.02)
    return WebServer(server, thread, host, sock.getsockname()[1])
