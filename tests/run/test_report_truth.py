"""report.md and the summary say what the run did (issue 24: items 3, 18, 19, 20).

Real runs of the main command: the replay oracle on small pools, and the stand-in judge
(tests/support/honest_judge.py) over HTTP with prices, for the cost column.
"""

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from aeuf.cli import main

pytest_plugins = ["servers"]

FAST = ["--features", "stats", "--head", "bll", "--num_responses", "4", "--no_progress"]
WORDS = ("terrible", "poor", "fair", "good", "excellent")


def _pool(path: Path, n: int, score, *, quality: bool = False) -> Path:
    """n prompts x 4 responses; score(p, r, length) -> the gold score (None: no gold)."""
    rng = np.random.default_rng(0)
    rows = []
    for p in range(n):
        row = {"prompt_id": f"q{p}", "instruction": f"Question {p}: explain topic {p}."}
        for r in range(4):
            k = int(rng.integers(1, 40))
            lead = f"{WORDS[(p + r) % 5]} answer. " if quality else ""
            row[f"response_{r}"] = lead + " ".join(f"w{p}x{r}y{i}" for i in range(k)) + "."
            s = score(p, r, k)
            if s is not None:
                row[f"response_{r}_score"] = s
        rows.append(row)
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def _table(report: str) -> list[list[str]]:
    """The rounds table of report.md: one list of cells per round."""
    lines = [x for x in report.splitlines() if re.match(r"\| \d+ \|", x)]
    return [[c.strip() for c in x.strip("|").split("|")] for x in lines]


def _row(report: str, name: str) -> str:
    return next(x for x in report.splitlines() if x.startswith(f"| {name} |"))


def test_the_cost_column_sums_to_the_total_when_rounds_revisit_prompts(tmp_path, honest_judge):
    judge = honest_judge(context=4096)
    pool = _pool(tmp_path / "pool.csv", 20, lambda p, r, k: None, quality=True)
    out = tmp_path / "run"
    args = [str(pool), "--output_dir", str(out), "--judge_base_url", judge.base_url,
            "--judge_model", "honest", "--judge_price_in", "5", "--judge_price_out", "15",
            "--budget", "60", "--batch_size", "10", *FAST]
    assert main(args) == 0
    report = (out / "report.md").read_text()
    costs = [float(r[-1].lstrip("$")) for r in _table(report)]  # cost is the last column
    total = sum(json.loads(x)["cost"] for x in (out / "judgements.jsonl").read_text().splitlines())
    assert len(costs) == 6 and total > 0
    assert sum(costs) == pytest.approx(total, abs=5e-4)  # 4 decimals a round
    assert f"| cost | ${total:.4f} |" in report
    rounds = [json.loads((out / "rounds" / f"{t}.json").read_text()) for t in range(6)]
    seen = [set(r["prompt_ids"]) for r in rounds]
    assert any(seen[t] & set().union(*seen[:t]) for t in range(1, 6))  # prompts were revisited
    assert main(args) == 0  # a rerun (nothing sent) charges the same rounds the same
    assert [float(r[-1].lstrip("$")) for r in _table((out / "report.md").read_text())] == costs


def test_keep_ties_the_report_says_the_ties_are_rows(tmp_path, capsys):
    tied = lambda p, r, k: 3.0 if p < 7 else float(k + r)  # noqa: E731  (7 prompts all equal)
    pool, out = _pool(tmp_path / "pool.csv", 12, tied), tmp_path / "run"
    assert main([str(pool), "--output_dir", str(out), "--keep_ties", "--batch_size", "6", *FAST]) == 0
    report = (out / "report.md").read_text()
    rows = (out / "preferences.jsonl").read_text().splitlines()
    assert len(rows) == 12 and sum(json.loads(x)["tie"] for x in rows) == 7
    assert "12 of 12: 5 decided, 7 tied" in _row(report, "prompts labelled")
    assert "7 (exported as rows" in _row(report, "ties")
    assert "not exported" not in report
    assert "12 (`preferences.jsonl`" in _row(report, "rows exported")
    assert "7 of them ties" in _row(report, "rows exported")


def test_without_keep_ties_the_report_says_they_are_left_out(tmp_path):
    tied = lambda p, r, k: 3.0 if p < 7 else float(k + r)  # noqa: E731
    pool, out = _pool(tmp_path / "pool.csv", 12, tied), tmp_path / "run"
    assert main([str(pool), "--output_dir", str(out), "--batch_size", "6", *FAST]) == 0
    report = (out / "report.md").read_text()
    assert len((out / "preferences.jsonl").read_text().splitlines()) == 5
    assert "7 (not exported" in _row(report, "ties")


def test_stop_when_agreement_is_explained_in_the_summary_and_the_report(tmp_path, capsys):
    pool = _pool(tmp_path / "pool.csv", 64, lambda p, r, k: float(k))  # length decides
    out = tmp_path / "run"
    args = [str(pool), "--output_dir", str(out), "--stop_when_agreement", "0.8",
            "--batch_size", "16", "--initial_rule", "random", *FAST]
    assert main(args) == 0
    said = capsys.readouterr().err
    report = (out / "report.md").read_text()
    rounds = _table(report)
    assert len(rounds) < 4  # it did stop early
    why = f"stopped after round {len(rounds) - 1} of rounds 0-3"
    assert why in said and "--stop_when_agreement 0.8" in said
    assert f"**Stopped early:** {why}" in report and "planned prompts were not asked" in report


def test_a_cascade_resumes_after_either_judges_url_changed(tmp_path):
    from aeuf.errors import InputError
    from aeuf.io import RunDir

    def config(strong: str, cheap: str, cheap_model: str = "small") -> dict:
        return {"oracle": {"name": "judge", "judge": {"base_url": strong, "model": "big"},
                           "cheap_judge": {"base_url": cheap, "model": cheap_model,
                                           "concurrency": 4, "timeout": 60.0}}}

    with RunDir(tmp_path / "run") as rd:
        rd.check_config(config("http://127.0.0.1:1/v1", "http://127.0.0.1:2/v1"))
        rd.check_config(config("http://127.0.0.1:3/v1", "http://127.0.0.1:4/v1"))
        changed = config("http://127.0.0.1:3/v1", "http://127.0.0.1:4/v1")
        changed["oracle"]["cheap_judge"].update(concurrency=8, timeout=5.0)
        rd.check_config(changed)  # transport settings are not the run's identity either
        with pytest.raises(InputError, match="oracle.cheap_judge.model"):
            rd.check_config(config("http://127.0.0.1:3/v1", "http://127.0.0.1:4/v1", "other"))


def _card(out: Path) -> str:
    return (out / "hf" / "README.md").read_text()


def _hygiene_rows(card: str) -> list[list[str]]:
    part = card.split("## Judge hygiene", 1)[1].split("\n## ", 1)[0]
    return [[c.strip() for c in x.strip("|").split("|")] for x in part.splitlines()
            if x.startswith("| ") and not x.startswith("| figure")]


def test_the_card_of_a_replay_run_says_its_budget_and_no_judge_template(tmp_path):
    pool = _pool(tmp_path / "pool.csv", 12, lambda p, r, k: float(k + r))
    out = tmp_path / "run"
    assert main([str(pool), "--output_dir", str(out), "--batch_size", "6", *FAST]) == 0
    card = _card(out)
    made = next(x for x in card.splitlines() if x.startswith("- **Rounds**"))
    assert "budget every prompt once" in made and "unknown" not in made
    oracle = next(x for x in card.splitlines() if x.startswith("- **Oracle**"))
    assert "label_mode deterministic" in oracle and "template" not in oracle
    rows = _hygiene_rows(card)
    assert rows and all(len(r) == 3 and r[2] for r in rows)  # every figure says what it means


def test_a_cascade_card_and_report_name_both_judges_and_it_resumes_on_new_ports(
        tmp_path, honest_judge, capsys):
    strong, cheap = honest_judge(context=4096), honest_judge(context=4096)
    pool = _pool(tmp_path / "pool.csv", 20, lambda p, r, k: None, quality=True)
    out = tmp_path / "run"

    def args(strong_url, cheap_url):
        return [str(pool), "--output_dir", str(out), "--judge_base_url", strong_url,
                "--judge_model", "honest", "--cheap_judge_base_url", cheap_url,
                "--cheap_judge_model", "honest-small", "--batch_size", "5", *FAST]

    assert main(args(strong.base_url, cheap.base_url)) == 0
    capsys.readouterr()
    rows = [json.loads(x) for x in (out / "preferences.jsonl").read_text().splitlines()]
    cheap_rows = sum(r["judge"] == "cheap_judge" for r in rows)
    assert 0 < cheap_rows < len(rows)  # both judges labelled rows
    card, report = _card(out), (out / "report.md").read_text()
    oracle = next(x for x in card.splitlines() if x.startswith("- **Oracle**"))
    assert "honest-small" in oracle and f"labelled {cheap_rows} pairs alone" in oracle
    assert f"cheap judge honest-small first: {cheap_rows} pairs" in report
    assert all(r[2] for r in _hygiene_rows(card))
    moved_strong, moved_cheap = honest_judge(context=4096), honest_judge(context=4096)
    assert main(args(moved_strong.base_url, moved_cheap.base_url)) == 0  # ports changed: resumed
    assert "(0 sent now)" in capsys.readouterr().err
    assert moved_strong.requests == {} and moved_cheap.requests == {}


def test_a_one_round_run_has_no_empty_progress_plot(tmp_path):
    pool = _pool(tmp_path / "pool.csv", 12, lambda p, r, k: float(k + r))
    out = tmp_path / "run"
    assert main([str(pool), "--output_dir", str(out), "--batch_size", "12", *FAST]) == 0
    report = (out / "report.md").read_text()
    assert len(_table(report)) == 1 and not (out / "progress.png").exists()
    assert "No progress plot" in report and "![ratings](ratings.png)" in report


@pytest.mark.parametrize("rounds", [[0, 1], [0, 1, 2, 3, 4, 5, 6], list(range(40))])
def test_round_ticks_are_whole_rounds(rounds):
    import matplotlib.pyplot as plt

    from aeuf.run.plots import _round_ticks

    fig, ax = plt.subplots()
    ax.plot(rounds, rounds)
    _round_ticks(ax, rounds)
    lo, hi = ax.get_xlim()
    ticks = [x for x in ax.get_xticks() if lo <= x <= hi]
    plt.close(fig)
    assert ticks and all(float(x).is_integer() for x in ticks)
    assert lo < min(rounds) and hi > max(rounds)


def test_prompts_without_two_gold_scores_are_counted_in_the_report(tmp_path, capsys):
    """NaN gold (real pools have it): a prompt with fewer than two scored responses cannot
    be labelled by the replay oracle; the report says how many, not only 'n of P labelled'."""
    def score(p, r, k):
        return None if p == 0 or (p == 1 and r > 0) else float(k)

    pool = _pool(tmp_path / "p.csv", 8, score)
    out = tmp_path / "run"
    assert main([str(pool), "--num_annotations", "2", "--output_dir", str(out), *FAST]) == 0
    report = (out / "report.md").read_text()
    assert "| prompts labelled | 6 of 8: 6 decided, 0 tied |" in report
    assert "| prompts the oracle cannot label (fewer than 2 responses with a gold score) | 2 |" \
        in report
    assert "6 of 8 prompts labelled by the replay oracle (0 ties, 0 without a usable label, " \
        "2 with fewer than 2 gold scores, 0 skipped" in capsys.readouterr().err
