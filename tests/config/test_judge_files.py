"""A judge is a file: `--judge FILE` (and `--cheap_judge FILE` for a cascade) whose keys are
the judge flags' names without their prefix; flags override it; it never holds a key. The
shipped judges/ load, and a judge file drives `aeuf judge` and the main command end to end
against the honest stand-in judge (tests/support/honest_judge.py) on 127.0.0.1."""

import argparse
import json
from pathlib import Path

import pandas as pd
import pytest
from paths import REPO

from aeuf.cli import main
from aeuf.commands.run import add_arguments, config_from_args

pytest_plugins = ["servers"]
JUDGES = sorted((REPO / "judges").glob("*.yaml"))
WORDS = ["excellent", "poor", "good", "terrible"]


def _cfg(*argv: str):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return config_from_args(parser.parse_args(["p.csv", *argv]))


def test_the_shipped_judges_load_as_judge_and_as_cheap_judge():
    assert len(JUDGES) >= 3
    for path in JUDGES:
        text = path.read_text()
        assert "sk-" not in text and "api_key:" not in text
        cfg = _cfg("--judge", str(path), "--cheap_judge", str(path))
        assert cfg.oracle.judge.model and cfg.oracle.judge.base_url
        assert cfg.oracle.cheap_judge.model == cfg.oracle.judge.model
        assert cfg.oracle.cheap_judge.price_in == cfg.oracle.judge.price_in
    cfg = _cfg("--judge", str(JUDGES[1]))  # gpt4o-ultrafeedback
    assert (cfg.oracle.judge.model, cfg.oracle.template, cfg.oracle.judge.price_in,
            cfg.oracle.judge.price_out, cfg.oracle.context_tokens) == (
        "gpt-4o", "ultrafeedback", 2.5, 10.0, 128000)


def test_flags_override_the_file(tmp_path):
    (tmp_path / "j.yaml").write_text("base_url: http://127.0.0.1:9/v1\nmodel: a\n"
                                     "template: pairwise\nprice_in: 1\nconcurrency: 3\n")
    cfg = _cfg("--judge", str(tmp_path / "j.yaml"), "--judge_model", "b",
               "--judge_template", "overall")
    o = cfg.oracle
    assert (o.judge.model, o.template, o.judge.price_in, o.judge.concurrency) == (
        "b", "overall", 1.0, 3)


@pytest.mark.parametrize("text, says", [
    ("model: m\napi_key: sk-secret-123456789\n", "never holds a key"),
    ("model: m\nmodle: x\n", "unknown setting 'modle' for a judge file; did you mean 'model'?"),
    ("model: m\nconcurrency: many\n", "oracle.judge.concurrency = 'many': expected an integer"),
    ("model: m\nprice_in: -1\n", "j.yaml: oracle.judge.price_in = -1.0: must be at least 0"),
    ("- model\n", "expected a mapping of settings"),
])
def test_a_bad_judge_file_is_one_line_and_never_echoes_a_key(tmp_path, capsys, text, says):
    (tmp_path / "j.yaml").write_text(text)
    assert main([str(tmp_path / "p.csv"), "--judge", str(tmp_path / "j.yaml")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and says in err[0], err
    assert "sk-secret" not in err[0]


def _annotations(path: Path) -> Path:
    rows = [{"prompt_id": f"p{n}", "prompt": f"Question {n}?",
             "response_ids": [f"p{n}:0", f"p{n}:1"],
             "responses": [f"{WORDS[n % 4]} answer {n}.", f"{WORDS[(n + 1) % 4]} reply {n}."]}
            for n in range(4)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def _judge_file(path: Path, url: str, **extra) -> Path:
    keys = {"base_url": url, "model": "honest", "template": "pairwise",
            "answer_format": "json_object", "price_in": 1000, "price_out": 2000,
            "concurrency": 2, "api_key_env": "AEUF_TEST_JUDGE_KEY", **extra}
    path.write_text("".join(f"{k}: {v}\n" for k, v in keys.items()))
    return path


@pytest.mark.server
def test_aeuf_judge_with_a_judge_file_end_to_end(honest_judge, tmp_path, capsys):
    from honest_judge import QUALITY

    server = honest_judge(formats=("json_object",))
    judge = _judge_file(tmp_path / "honest.yaml", server.base_url)
    notes = _annotations(tmp_path / "annotations.jsonl")
    out = tmp_path / "pairwise"
    assert main(["judge", str(notes), "--judge", str(judge), "--output_dir", str(out),
                 "--no_progress"]) == 0
    assert server.prompts and all("Winner:" in p for p in server.prompts)  # the file's template
    for line in (out / "judged.jsonl").read_text().splitlines():
        j = json.loads(line)
        n = int(j["prompt_id"][1:])
        best = 0 if QUALITY[WORDS[n % 4]] > QUALITY[WORDS[(n + 1) % 4]] else 1
        assert j["chosen_id"] == f"p{n}:{best}"
    log = [json.loads(x) for x in (out / "judgements.jsonl").read_text().splitlines()]
    for x in log:  # the file's prices: USD 1000 per 1M prompt tokens, 2000 per 1M completion
        assert x["tokens"] * 1000 / 1e6 < x["cost"] < x["tokens"] * 2000 / 1e6
    before = len(server.prompts)
    assert main(["judge", str(notes), "--judge", str(judge), "--judge_template", "overall",
                 "--output_dir", str(tmp_path / "overall"), "--no_progress"]) == 0
    assert all("Winner:" not in p for p in server.prompts[before:])  # the flag won
    capsys.readouterr()


def _pool(path: Path) -> Path:
    rows = []
    for n in range(6):
        row = {"prompt_id": f"q{n}", "instruction": f"Question {n}?"}
        for j in range(3):
            row[f"response_{j}"] = f"{WORDS[(n + j) % 4]} answer {j} to {n}."
        rows.append(row)
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


@pytest.mark.server
def test_a_cascade_is_two_judge_files(honest_judge, tmp_path, capsys):
    strong, cheap = honest_judge(formats=("json_object",)), honest_judge(formats=("json_object",))
    out = tmp_path / "run"
    code = main([str(_pool(tmp_path / "pool.csv")), "--num_responses", "3",
                 "--judge", str(_judge_file(tmp_path / "strong.yaml", strong.base_url,
                                            template="overall")),
                 "--cheap_judge", str(_judge_file(tmp_path / "cheap.yaml", cheap.base_url,
                                                  model="honest-cheap", price_in=1,
                                                  margin=0.0)),
                 "--oracle", "judge", "--features", "stats", "--head", "bll",
                 "--batch_size", "3", "--initial_rule", "random", "--check_fraction", "0",
                 "--output_dir", str(out), "--no_progress"])
    err = capsys.readouterr().err
    assert code == 0, err
    assert "cheap judge" in err and "template, answer_format" in err  # the shared keys, said
    saved = json.loads((out / "config.json").read_text())["oracle"]
    assert saved["judge"]["base_url"] == strong.base_url and saved["template"] == "overall"
    assert saved["cheap_judge"]["base_url"] == cheap.base_url
    assert saved["cheap_judge"]["price_in"] == 1 and saved["cheap_judge_margin"] == 0.0
    assert cheap.requests.get(200, 0) > 0  # the cheap judge was asked first
    log = [json.loads(x) for x in (out / "judgements.jsonl").read_text().splitlines()]
    assert {x["judge"].split("/")[0] for x in log} <= {"honest", "honest-cheap"}
