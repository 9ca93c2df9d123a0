"""The web oracle tells the page "saved" only once the ledger has written the answer
(issue 20, item 4): driven over real HTTP against the real ledger, in this process."""

import io
import json
import re
import threading
import urllib.request

from aeuf.config import OracleConfig
from aeuf.io import JudgementLog
from aeuf.oracle import make_oracle
from aeuf.run.ledger import Ledger
from aeuf.types import JudgeTask

TASK = JudgeTask("p1", "Q?", ("p1:a", "p1:b"), ("A", "B"))


class FullDisk(JudgementLog):
    def append(self, answer):
        raise OSError("No space left on device")


def call(url: str, token: str, path: str, body: dict | None = None) -> dict:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url + path, data=data, headers={"X-Token": token})
    with urllib.request.urlopen(req) as reply:
        return json.loads(reply.read())


def answer_once(log: JudgementLog, task: JudgeTask = TASK, seen: list | None = None
                ) -> tuple[dict, list[BaseException], str]:
    """Start a round on `log` in a thread, answer its one pair over HTTP: -> (the POST's
    reply, what the ledger raised, the log's text right after the reply); seen gets the
    state the page was shown."""
    out = io.StringIO()
    oracle = make_oracle(OracleConfig(name="web"), has_gold=False, stdout=out)
    url, token = re.search(r"(http://\S+)/\?token=(\S+)", out.getvalue()).groups()
    raised: list[BaseException] = []

    def judge():
        try:
            Ledger.open(log).judge(oracle, [task], chunk=10**9, progress=False)
        except OSError as err:
            raised.append(err)

    thread = threading.Thread(target=judge)
    thread.start()
    try:
        state = call(url, token, "/api/state")
        while state["pair"] is None:  # until send() opened the round
            state = call(url, token, "/api/state")
        if seen is not None:
            seen.append(state)
        reply = call(url, token, "/api/answer", {"key": state["pair"]["key"], "choice": "1"})
        text = log.path.read_text() if log.path.exists() else ""
        thread.join()
    finally:
        oracle.close()
    return reply, raised, text


def test_saved_means_on_disk(tmp_path):
    reply, raised, text = answer_once(JudgementLog(tmp_path / "judgements.jsonl"))
    assert reply["saved"] is True and not raised
    assert '"judge": "web:annotator1"' in text  # written before the page was told


def test_an_answer_the_ledger_could_not_write_is_not_called_saved(tmp_path):
    reply, raised, text = answer_once(FullDisk(tmp_path / "judgements.jsonl"))
    assert reply["saved"] is False and raised and text == ""


def test_a_multi_turn_prompt_is_shown_as_turns_and_keyed_by_them(tmp_path):
    """Each turn goes to the page as its role and sanitised HTML; the ledger key covers
    every turn the annotator saw (another earlier turn: another key)."""
    turns = (("system", "Be brief."), ("user", "<script>alert(1)</script> *hi*"),
             ("assistant", "Hello."), ("user", "Q?"))
    keys = []
    for n, said in enumerate((turns, turns[:1] + (("user", "other"),) + turns[2:])):
        seen: list = []
        log = JudgementLog(tmp_path / f"{n}.jsonl")
        reply, raised, text = answer_once(log, JudgeTask("p1", "Q?", ("p1:a", "p1:b"),
                                                         ("A", "B"), turns=said), seen)
        assert reply["saved"] is True and not raised
        keys.append(json.loads(text)["key"])
        pair = seen[0]["pair"]
        assert [t["role"] for t in pair["turns"]] == ["system", "user", "assistant", "user"]
        if n == 0:
            assert "&lt;script&gt;" in pair["turns"][1]["html"] and "<em>hi</em>" in pair["turns"][1]["html"]
    assert keys[0] != keys[1]
