"""`--oracle web` (issue 20) in a real headless Chromium (Debian's, driven by Playwright):
a whole run annotated by keyboard gives the dataset the terminal oracle makes from the same
answers; reload and a killed server lose nothing and ask nothing twice; two annotators with
k = 2 never share a vote slot; hostile text never runs; a bad token gets 403 and no data."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import stat
import urllib.error
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from killing import log_lines
from webpage import ROOT, Run, annotate, launch, press, shown_key, write_pool


@pytest.fixture(scope="module")
def browser():
    yield from launch()


@pytest.fixture(autouse=True)
def _reap():
    yield
    Run.reap()  # no run outlives its test, even a failed one


COMMON = ["--num_responses", "3", "--features", "stats", "--head", "bll"]


def numbered_pool(path: Path, prompts: int = 4) -> Path:
    """Responses 'answer p r xxx': the rule 'higher r wins' decides every pair."""
    return write_pool(path, [[f"answer {p} {r} " + "x" * (3 + 7 * ((p + r) % 3))
                              + f"\n\nIn **Python**:\n\n```python\nprint({p} * {r})\n```"
                              for r in range(3)] for p in range(prompts)],
                      [f"Question {p}: multiply by *code*." for p in range(prompts)])


def higher_r(page) -> str:
    """'1' when the left response has the higher r, else '2' (left/right is random)."""
    r = [int(re.search(r"answer \d+ (\d+)", page.inner_text(f"#{side}"))[1])
         for side in ("left", "right")]
    return "1" if r[0] > r[1] else "2"


class Chooser(io.TextIOBase):
    """stdin for the terminal oracle that answers by the same rule, reading what it shows."""

    def __init__(self, out: io.StringIO):
        self.out = out

    def readline(self, size: int = -1) -> str:
        last = self.out.getvalue().rsplit("=== pair", 1)[1]
        a, b = (int(x) for x in re.findall(r"\|  answer \d+ (\d+)", last)[:2])
        return "a\n" if a > b else "b\n"


def dataset(run_dir: Path) -> list[tuple]:
    df = pd.read_json(run_dir / "preferences.jsonl", lines=True)
    return sorted(df[["prompt", "chosen", "rejected", "tie", "round"]].itertuples(index=False))


def get(url: str, token: str | None) -> tuple[int, str]:
    req = urllib.request.Request(url, headers={"X-Token": token} if token else {})
    try:
        with urllib.request.urlopen(req) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()


def test_a_whole_run_by_keyboard_equals_the_terminal_oracle(browser, tmp_path, monkeypatch):
    pool = numbered_pool(tmp_path / "pool.csv")
    run = Run([str(pool), *COMMON, "--batch_size", "2", "--output_dir", str(tmp_path / "web")])
    url = run.links["annotator1"]
    base = url.split("/?")[0]
    for path in ("/", "/api/state"):  # a wrong or missing token: 403 and no data
        for token in (None, "not-the-token"):
            status, body = get(base + path + (f"?token={token}" if token else ""), None)
            assert status == 403 and "answer" not in body and "Question" not in body
    page = browser.new_page(viewport={"width": 1000, "height": 640})
    page.goto(url)
    page.wait_for_selector("#pair:not([hidden])")
    page.screenshot(path=str(tmp_path / "web_annotate.png"))  # the README's picture: only
    if os.environ.get("AEUF_UPDATE_SCREENSHOT") == "1":  # on request, never on every CI run
        (ROOT / "docs").mkdir(exist_ok=True)
        shutil.copyfile(tmp_path / "web_annotate.png", ROOT / "docs" / "web_annotate.png")
    page.set_viewport_size({"width": 400, "height": 800})  # works at 400 px: no sideways scroll
    assert page.evaluate("document.documentElement.scrollWidth") <= 400
    seen = annotate(run, {"annotator1": page}, higher_r)
    assert run.wait() == 0, run.output
    assert len(seen) == 4 and len(set(seen)) == 4
    lines = log_lines(tmp_path / "web" / "judgements.jsonl")
    assert {x["judge"] for x in lines} == {"web:annotator1"}
    assert all(json.loads(x["raw"])["left"] in ("a", "b") for x in lines)  # position recorded

    from aeuf.cli import main

    out = io.StringIO()
    monkeypatch.setattr("sys.stdout", out)
    monkeypatch.setattr("sys.stdin", Chooser(out))
    assert main([str(pool), *COMMON, "--batch_size", "2", "--oracle", "human", "--no_progress",
                 "--output_dir", str(tmp_path / "terminal")]) == 0
    assert dataset(tmp_path / "web") == dataset(tmp_path / "terminal")
    for folder, who in (("web", "annotator1"), ("terminal", "terminal")):  # names its annotator
        df = pd.read_parquet(tmp_path / folder / "preferences.parquet")
        assert set(df["annotator"]) == {who}
    page.close()


def test_reload_and_a_killed_server_lose_nothing_ask_nothing_twice_and_keep_the_links(
        browser, tmp_path):
    """Two annotators, k = 2. annotator1 answers, ties, undoes the tie (a retraction line;
    the pair is shown again), reloads (the same pair), answers it and one more; annotator2
    answers one; the server is SIGKILLed. Every answer the page was told saved is on disk;
    the same command prints the same links (tokens kept in the run folder, 0600), the old
    pages work again, nothing answered is asked again, and nobody gets the other slot of a
    pair they voted on before the kill."""
    import socket

    with socket.socket() as free:  # a fixed --web_port: the same address after the restart
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    pool = numbered_pool(tmp_path / "pool.csv")
    args = [str(pool), *COMMON, "--batch_size", "4", "--annotators", "2", "--votes_per_pair",
            "2", "--web_port", str(port), "--output_dir", str(tmp_path / "run")]
    log = tmp_path / "run" / "judgements.jsonl"
    run = Run(args, annotators=2)
    links = dict(run.links)
    pages = {who: browser.new_context().new_page() for who in links}
    for who, url in links.items():
        pages[who].goto(url)
        pages[who].wait_for_selector("#pair:not([hidden])")
    one = pages["annotator1"]
    press(one, higher_r(one))
    press(one, "t")
    press(one, "u")  # undo the tie: a retraction line, the pair is shown again
    again = shown_key(one)
    one.reload()  # mid-round: the page resumes on the same pair
    one.wait_for_selector("#pair:not([hidden])")
    assert shown_key(one) == again
    press(one, higher_r(one))
    press(pages["annotator2"], higher_r(pages["annotator2"]))
    first = log_lines(log)
    assert [x["raw"] for x in first].count(json.dumps({"key": "u", "annotator": "annotator1"})) == 1
    run.kill()  # SIGKILL mid-round: every answer the page was told saved is on disk
    answered = {x["key"] for x in first if x["error"] is None}
    assert len(answered) == 3 and log_lines(log) == first
    assert stat.S_IMODE((tmp_path / "run" / "web_tokens.json").stat().st_mode) == 0o600
    run = Run(args, annotators=2)  # the same command again
    assert run.links == links  # the links printed on the first run keep working
    for who, url in links.items():
        pages[who].goto(url)
    seen = annotate(run, pages, higher_r)
    assert run.wait() == 0, run.output
    assert len(seen) == 5 and not answered & {key for _, key in seen}
    latest = {x["key"]: x for x in log_lines(log)}  # the undone tie: its later answer
    assert len(latest) == 8 and all(x["error"] is None for x in latest.values())
    by_pair: dict = {}
    for x in latest.values():
        by_pair.setdefault(x["key"].rsplit(":v", 1)[0], []).append(x["judge"])
    assert all(sorted(who) == ["web:annotator1", "web:annotator2"] for who in by_pair.values())
    assert len(pd.read_json(tmp_path / "run" / "preferences.jsonl", lines=True)) == 4
    for page in pages.values():
        page.close()


def test_two_annotators_with_two_votes_never_share_a_slot(browser, tmp_path):
    pool = numbered_pool(tmp_path / "pool.csv")
    run = Run([str(pool), *COMMON, "--batch_size", "4", "--annotators", "2",
               "--votes_per_pair", "2", "--output_dir", str(tmp_path / "run")], annotators=2)
    pages = {}
    for who, url in run.links.items():
        pages[who] = browser.new_context().new_page()
        pages[who].goto(url)
    seen = annotate(run, pages, higher_r)
    assert run.wait() == 0, run.output
    lines = log_lines(tmp_path / "run" / "judgements.jsonl")
    keys = [x["key"] for x in lines]
    assert len(keys) == len(set(keys)) == 8  # 4 pairs x 2 votes, no slot asked twice
    by_pair: dict = {}
    for x in lines:
        by_pair.setdefault(x["key"].rsplit(":v", 1)[0], set()).add(x["judge"])
    assert all(len(who) == 2 for who in by_pair.values())  # never both votes to one person
    assert len(seen) == 8
    agree = json.loads((tmp_path / "run" / "judge_hygiene.json").read_text())["agreement"]
    assert agree["pairs"] == 4 and agree["votes_per_pair"] == 2
    assert {w: (x["votes"], x["agrees_with_majority"]) for w, x in agree["annotators"].items()
            } == {"annotator1": (4, 1.0), "annotator2": (4, 1.0)}  # both answer by one rule
    assert "Fleiss' kappa" in (tmp_path / "run" / "report.md").read_text()
    rows = pd.read_json(tmp_path / "run" / "preferences.jsonl", lines=True)
    assert len(rows) == 4 and set(rows["annotator"]) == {"annotator1,annotator2"}
    if agree["fleiss_kappa"] is not None:  # None when every vote fell in one category
        assert agree["fleiss_kappa"] == 1.0
        assert "Fleiss' kappa" in (tmp_path / "run" / "hf" / "README.md").read_text()


def answer_over_http(run: Run, who: str = "annotator1") -> int:
    """Answer every pair the page serves by the rule 'higher r wins', over plain HTTP, until
    the process ends: -> answers given."""
    base, token = run.links[who].split("/?token=")
    n = 0
    while run.proc.poll() is None:
        try:
            state = call(base, token, "/api/state")
        except OSError:  # the server stopped: the process is ending
            break
        if state["pair"]:
            r = [int(re.search(r"answer \d+ (\d+)", state["pair"][side])[1])
                 for side in ("left", "right")]
            choice = "1" if r[0] > r[1] else "2"
            assert call(base, token, "/api/answer", {"key": state["pair"]["key"],
                                                     "choice": choice})["saved"] is True
            n += 1
    return n


def call(base: str, token: str, path: str, body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, headers={"X-Token": token})
    with urllib.request.urlopen(req, timeout=60) as reply:
        return json.loads(reply.read())


@pytest.mark.slow
def test_annotate_a_run_that_wrote_annotations(tmp_path, monkeypatch, capsys):
    """`aeuf annotate RUN_DIR` serves the pairs of a run without an oracle; the run's
    command with --oracle web then exports them without asking anything again."""
    from aeuf.cli import main

    pool = numbered_pool(tmp_path / "pool.csv")
    args = [str(pool), *COMMON, "--batch_size", "2", "--no_progress",
            "--output_dir", str(tmp_path / "run")]
    assert main([*args, "--oracle", "none"]) == 0
    assert (tmp_path / "run" / "annotations.jsonl").is_file()
    run = Run(["annotate", str(tmp_path / "run")], web=False)
    assert answer_over_http(run) == 4
    assert run.wait() == 0, run.output
    assert "4 of 4 prompts decided" in run.output
    asked = log_lines(tmp_path / "run" / "judgements.jsonl")
    assert len(asked) == 4
    capsys.readouterr()
    assert main([*args, "--oracle", "web"]) == 0  # nothing left to ask: it does not wait
    assert log_lines(tmp_path / "run" / "judgements.jsonl") == asked
    rows = pd.read_json(tmp_path / "run" / "preferences.jsonl", lines=True)
    assert len(rows) == 4 and set(rows["annotator"]) == {"annotator1"}
    assert all(int(re.search(r"answer \d+ (\d+)", c)[1]) > int(re.search(r"answer \d+ (\d+)", r)[1])
               for c, r in zip(rows["chosen"], rows["rejected"]))


def payloads(w: str) -> list[str]:
    """Ten hostile responses: each would set window.pwned or fetch a URL on the watch server."""
    return [
        f'<script>window.pwned=1;fetch("{w}/script")</script> plain words',
        f'<img src="{w}/img" onerror="window.pwned=2"> an image',
        "[click me](javascript:window.pwned=3) a link",
        '<svg onload="window.pwned=4"><circle r="5"/></svg> an svg',
        f'<style>body{{display:none;background:url({w}/style)}}</style>'
        f'<div style="background:url({w}/inline)">styled</div>',
        f"![tracker]({w}/md-img) a markdown image",
        f'<iframe src="{w}/frame"></iframe><object data="{w}/object"></object> frames',
        "[x](JaVaScRiPt:window.pwned=8) <javascript:window.pwned=8> "
        "[y](data:text/html,<script>window.pwned=8</script>)",
        f'<a href="javascript:window.pwned=9">raw link</a>'
        f'<meta http-equiv="refresh" content="0;url={w}/meta"><base href="{w}/base/">',
        f"```html\n</code></pre><script>window.pwned=10</script>\n```\n"
        f"<link rel=stylesheet href={w}/link> [ok](<{w}/ok> 'title\" onmouseover=\"window.pwned=10')",
    ]


def test_hostile_text_stays_text(browser, tmp_path):
    import http.server
    import threading

    hits: list[str] = []

    class Watch(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            hits.append(self.path)
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    watch = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Watch)
    threading.Thread(target=watch.serve_forever, daemon=True).start()
    w = f"http://127.0.0.1:{watch.server_address[1]}"
    bad = payloads(w)
    prompts = [f'<script>window.pwned=11</script><img src="{w}/prompt"> Question {p}?'
               for p in range(5)]
    turns = [[{"role": "system", "content": f"<style>body{{display:none}}</style> rule {p}"},
              {"role": "user", "content": f'<img src="{w}/turn" onerror="window.pwned=12"> hi'},
              {"role": "assistant", "content": "<script>window.pwned=13</script> *hello*"},
              {"role": "user", "content": prompts[p]}] for p in range(5)]
    pool = write_pool(tmp_path / "pool.csv", [bad[2 * p: 2 * p + 2] for p in range(5)], prompts,
                      messages=turns)
    run = Run([str(pool), "--num_responses", "2", "--features", "stats", "--head", "bll",
               "--batch_size", "5", "--output_dir", str(tmp_path / "run")])
    status, _ = get(run.links["annotator1"], None)
    with urllib.request.urlopen(run.links["annotator1"]) as reply:
        csp = reply.headers["Content-Security-Policy"]
    assert status == 200 and "script-src 'self'" in csp and "img-src 'none'" in csp
    page = browser.new_page()
    page.goto(run.links["annotator1"])
    texts = []

    def check(p):
        assert p.evaluate("window.pwned") is None
        assert p.query_selector_all("#pair :is(script, img, svg, iframe, object, style, link, "
                                    "meta, base, [style], [onerror], [onload])") == []
        hrefs = p.eval_on_selector_all("#pair a", "xs => xs.map(a => a.getAttribute('href'))")
        assert all(h.startswith(("http://", "https://")) for h in hrefs), hrefs
        assert p.evaluate("getComputedStyle(document.body).display") != "none"
        roles = p.eval_on_selector_all("#prompt .turn .role", "xs => xs.map(x => x.textContent)")
        assert roles == ["system", "user", "assistant", "user"]  # a multi-turn prompt: its turns
        assert "<em>hello</em>" in p.inner_html("#prompt")
        texts.append(p.inner_text("#pair"))

    seen = annotate(run, {"annotator1": page}, lambda p: "1", check=check)
    assert run.wait() == 0, run.output
    assert len(seen) == 5 and page.evaluate("window.pwned") is None
    shown = "\n".join(texts)
    assert "<script>" in shown and "onerror" in shown  # shown as text, not run
    watch.shutdown()
    assert hits == []  # nothing fetched from the watch server
    page.close()
