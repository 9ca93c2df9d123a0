"""Helpers for the web oracle's browser tests: start `aeuf ... --oracle web` as a child
process, read the links it prints, and drive its page in Debian's headless Chromium."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from pathlib import Path

import pandas as pd
from paths import REPO
from servers import require, unavailable

ROOT = REPO
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
LINK = re.compile(r"^\s+(annotator\d+): (http://\S+/\?token=\S+)$")
# true once the page shows a pair, or says it waits for others / the run has ended
READY = """() => { const p = document.getElementById('pair'), s = document.getElementById('status');
  return !p.hidden || /others are finishing|not answering|has ended/i.test(s.textContent); }"""


def launch():
    """Debian's chromium, headless, through Playwright (no browser download); a generator
    for a fixture (a missing browser fails the test under AEUF_REQUIRE_SERVERS=1)."""
    require("playwright")
    if not os.path.exists(CHROMIUM):
        unavailable(f"{CHROMIUM} is missing (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


def write_pool(path: Path, responses: list[list[str]], prompts: list[str] | None = None,
               messages: list[list[dict]] | None = None) -> Path:
    """A wide CSV pool: one row per prompt, columns response_0..; messages: each prompt's
    conversation (a `messages` column of JSON turns, the last one the prompt)."""
    prompts = prompts or [f"Question {p}?" for p in range(len(responses))]
    rows = [{"instruction": q, **{f"response_{r}": t for r, t in enumerate(rs)}}
            for q, rs in zip(prompts, responses)]
    for row, turns in zip(rows, messages or []):
        row["messages"] = json.dumps(turns)
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


class Run:
    """`python -m aeuf POOL --oracle web ...` as a child; links: {annotator: url}.
    Run.reap() kills every child still running (a test's teardown, pass or fail)."""

    started: list[Run] = []

    @classmethod
    def reap(cls) -> None:
        while cls.started:
            run = cls.started.pop()
            if run.proc.poll() is None:
                run.kill()

    def __init__(self, args: list[str], annotators: int = 1, web: bool = True):
        env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
        oracle = ["--oracle", "web"] if web else []  # web=False: `aeuf annotate RUN_DIR`
        self.proc = subprocess.Popen([sys.executable, "-m", "aeuf", *args, *oracle,
                                      "--no_progress"], env=env, cwd=ROOT, text=True,
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        Run.started.append(self)
        self.lines: list[str] = []
        self.links: dict[str, str] = {}
        while len(self.links) < annotators:
            line = self.proc.stdout.readline()
            assert line, "the run ended before printing its links:\n" + "".join(self.lines)
            self.lines.append(line)
            if m := LINK.match(line.rstrip("\n")):
                self.links[m[1]] = m[2]
        self._rest = threading.Thread(target=self._drain, daemon=True)
        self._rest.start()

    def _drain(self) -> None:
        for line in self.proc.stdout:
            self.lines.append(line)

    def wait(self, timeout: float = 300) -> int:
        rc = self.proc.wait(timeout)
        self._rest.join(timeout)
        return rc

    def kill(self) -> None:
        self.proc.kill()
        self.wait()

    @property
    def output(self) -> str:
        return "".join(self.lines)


def shown_key(page) -> str:
    """The key of the pair the page shows ('' when none)."""
    return page.get_attribute("#pair", "data-key") or ""


def press(page, key: str) -> None:
    """Press `key` on a shown pair and wait until the server said saved (the page then
    shows another pair or none)."""
    old = shown_key(page)
    page.keyboard.press(key)
    page.wait_for_function("""old => { const p = document.getElementById('pair');
        return p.dataset.key !== old || p.hidden; }""", arg=old, timeout=60_000)


def annotate(run: Run, pages: dict, choose, *, check=None) -> list[tuple[str, str]]:
    """Answer on every page, round after round, until the run ends; choose(page) -> key to
    press; check(page) runs on each pair before answering. Returns (annotator, pair key)."""
    seen = []
    while run.proc.poll() is None:
        for who, page in pages.items():
            page.wait_for_function(READY, timeout=120_000)
            if page.is_visible("#pair") and shown_key(page):
                if check:
                    check(page)
                seen.append((who, shown_key(page)))
                press(page, choose(page))
    return seen
