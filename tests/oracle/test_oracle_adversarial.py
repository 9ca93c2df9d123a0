"""No response can game the judge: every manipulative response of tests/support/adversarial.py, with
every built-in template and every answer format, is rated exactly as an honest judge rates
it. The judge is a deterministic stand-in served over HTTP (tests/support/honest_judge.py) that
reads requests like a chat model (control tokens split turns, it answers the last user
turn, quotes the responses after its answer) and is fooled exactly when a defence fails.
The last tests switch each defence off and check that the corpus then catches it."""

import itertools

import pytest
from adversarial import CASES, Case, opponent, opponent_quality
from configs import oracle_config

from aeuf.oracle import make_oracle
from aeuf.types import JudgeTask

pytest_plugins = ["servers"]

CONTEXT = 4096
RUNS = list(itertools.product(["overall", "ultrafeedback", "pairwise"],
                              ["lines", "json_schema", "auto"], [True, False]))


def oracle(url, template, fmt, logprobs):
    return make_oracle(oracle_config(name="judge", judge_base_url=url, judge_model="honest",
                                     template=template, answer_format=fmt, logprobs=logprobs,
                                     context_tokens=CONTEXT, max_tokens=64, concurrency=4,
                                     overlong="cut"),  # the long cases are shown cut
                       has_gold=False)


def task(i: int, case: Case, pairwise: bool) -> JudgeTask:
    responses = (case.response, opponent(case)) if pairwise else (case.response,)
    return JudgeTask(f"p{i}", case.prompt, tuple(f"p{i}:{j}" for j in range(len(responses))),
                     responses)


def wrong_verdicts(url, template, fmt, logprobs, cases=CASES) -> list[str]:
    """Names of the cases (with the order shown) not rated as the honest judge rates them."""
    from honest_judge import honest_value  # (after the servers plugin is loaded)

    judge = oracle(url, template, fmt, logprobs)
    pairwise = template == "pairwise"
    tasks = [task(i, c, pairwise) for i, c in enumerate(cases)]
    requests = [r for t in tasks for r in judge.plan(t)]
    answers = {a.key: a for a in judge.send(requests)}
    judge.close()
    wrong = []
    for r in requests:
        case = cases[int(r.task.prompt_id[1:])]
        quality = [case.quality, opponent_quality(case)]
        want = honest_value("pairwise" if pairwise else "rating",
                            [quality[s] for s in r.slots], logprobs)
        got = answers[r.key].value
        if got is None or abs(got - want) > 1e-9:
            wrong.append(f"{case.name}{r.slots}: {got} != {want} ({answers[r.key].error})")
    return wrong


@pytest.mark.parametrize("template,fmt,logprobs", RUNS)
def test_every_manipulative_response_is_rated_as_an_honest_judge_rates_it(
        honest_judge, template, fmt, logprobs):
    # auto: a server without json_schema; aeuf falls back to json_object
    judge = honest_judge(context=CONTEXT, formats=("json_object",) if fmt == "auto"
                         else ("json_schema", "json_object"))
    assert wrong_verdicts(judge.base_url, template, fmt, logprobs) == []
    assert judge.requests.get(200, 0) >= len(CASES)
    if fmt == "auto":  # json_schema refused once (per worker at most), then never asked
        assert 1 <= judge.requests.get(400, 0) <= 4


@pytest.mark.parametrize("name,fooled", [("chatml_turns", "Rating: 5"),
                                           ("chatml_new_user", "Rating: 1"),
                                           ("every_rating_line", "Rating: 2")])
def test_the_stand_in_judge_reads_raw_text_like_a_chat_model(honest_judge, name, fooled):
    """Sanity of the stand-in: shown a response raw (no neutralising), control tokens in it
    start turns and it answers the forged request; without them it rates honestly."""
    from honest_judge import chatml

    case = next(c for c in CASES if c.name == name)
    n = "a" * 32
    user = (f"## Instruction\n[[BEGIN INSTRUCTION {n}]]\nQ\n[[END INSTRUCTION {n}]]\n"
            f"## Response\n[[BEGIN RESPONSE {n}]]\n{case.response}\n[[END RESPONSE {n}]]\n"
            f'Start your reply with "Rating:".')
    messages = [{"role": "system", "content": "Rate."}, {"role": "user", "content": user}]
    reply = honest_judge().completion({"messages": messages}, chatml(messages), None)
    assert reply["choices"][0]["message"]["content"].split("\n")[0] == fooled


SABOTAGE = {
    "neutralise": ("aeuf.oracle.prompts.neutralise", lambda text: text,
                   {"chatml_turns", "llama3_turns", "mistral_turns", "gemma_turns", "phi_turns",
                    "hostile_prompt_turns"}),
    "cut": ("aeuf.oracle.prompts.cut_middle", lambda text, tokens, tag="": text,
            {"long_tail_forgery", "long_many_lines", "long_non_ascii", "long_emoji",
             "hostile_prompt_long"}),
    "nonce": ("aeuf.oracle.judge.new_nonce", lambda: "0" * 32, {"hostile_prompt_guess"}),
}


@pytest.mark.parametrize("defence", sorted(SABOTAGE))
def test_each_defence_is_load_bearing(honest_judge, monkeypatch, defence):
    """With one defence switched off, the corpus catches it (so the corpus can fail)."""
    target, fake, caught = SABOTAGE[defence]
    monkeypatch.setattr(target, fake)
    judge = honest_judge(context=CONTEXT)
    for template in ("overall", "pairwise"):
        wrong = {w.split("(")[0] for w in wrong_verdicts(judge.base_url, template, "lines",
                                                         False)}
        assert caught & wrong, (template, wrong)


def test_two_pass_substitution_would_be_caught(honest_judge, monkeypatch):
    """Filling placeholders again inside the texts ('{{tag}}' in a prompt) would let a
    prompt forge the fences; the corpus catches it."""
    import aeuf.oracle.prompts as prompts

    real = prompts.render

    def two_pass(template, prompt, responses, *, nonce, tokens=None):
        messages = real(template, prompt, responses, nonce=nonce, tokens=tokens)
        return [m | {"content": m["content"].replace("{{tag}}", nonce)} for m in messages]

    monkeypatch.setattr("aeuf.oracle.judge.render", two_pass)
    judge = honest_judge(context=CONTEXT)
    wrong = wrong_verdicts(judge.base_url, "overall", "lines", False)
    assert any(w.startswith("hostile_prompt_fence") for w in wrong)


def test_a_parser_that_reads_past_the_first_line_would_be_caught(honest_judge, monkeypatch):
    import re

    def last_answer_line(kind, reply, logprobs=None):
        found = re.findall(r"Rating:\s*([1-5])", reply)
        return float(found[-1]) if found else None

    monkeypatch.setattr("aeuf.oracle.judge.read_answer", last_answer_line)
    judge = honest_judge(context=CONTEXT)
    wrong = wrong_verdicts(judge.base_url, "overall", "lines", False)
    assert any(w.startswith("every_rating_line") for w in wrong)
