"""A --config file's values are checked against their settings' types: a wrong type is one
line naming the key, the value and the type expected (exit 1, nothing written); "no" is
false; command-level keys (prompts, no_progress) are accepted."""

import argparse

import pytest

from aeuf.cli import main
from aeuf.commands.run import add_arguments, config_from_args


def _cfg(tmp_path, text: str, *argv: str):
    (tmp_path / "c.yaml").write_text(text)
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args([*argv, "--config", str(tmp_path / "c.yaml")])
    return config_from_args(args), args


@pytest.mark.parametrize("text, key, value, expected", [
    ("num_instructions: 2.5\n", "input.num_instructions", "2.5", "expected an integer"),
    ('num_instructions: "eight"\n', "input.num_instructions", "'eight'", "expected an integer"),
    ("hidden: wide\n", "head.hidden", "'wide'", "expected an integer"),
    ("keep_ties: maybe\n", "export.keep_ties", "'maybe'", "expected true or false"),
    ("learning_rate: [1, 2]\n", "head.learning_rate", "[1, 2]", "expected a number"),
    ("format: KTO\n", "export.format", "'KTO'", "must be one of standard, conversational, kto"),
    ("head:\n  members: 0\n", "head.members", "0", "must be at least 1"),
    ("prompt_beta: .nan\n", "acquire.prompt_beta", "nan", "must be at least 0"),  # NaN < 0 is False
])
def test_a_wrong_value_in_a_config_file_is_one_line(tmp_path, capsys, text, key, value,
                                                     expected):
    (tmp_path / "c.yaml").write_text(text)
    out = tmp_path / "run"
    code = main([str(tmp_path / "p.csv"), "--config", str(tmp_path / "c.yaml"),
                 "--output_dir", str(out)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1, err
    assert f"{key} = {value}: {expected}" in err[0]
    assert not out.exists()  # refused before anything was written


def test_no_is_false_and_a_single_width_is_one_layer(tmp_path):
    cfg, _ = _cfg(tmp_path, 'keep_ties: "no"\nwest_of_n: off\nhidden: 64\nmembers: "8"\n',
                  "p.csv")
    assert cfg.export.keep_ties is False and cfg.export.west_of_n is False
    assert cfg.head.hidden == (64,) and cfg.head.members == 8
    cfg, _ = _cfg(tmp_path, "keep_ties: yes\nhidden: 32,16\n", "p.csv")
    assert cfg.export.keep_ties is True and cfg.head.hidden == (32, 16)


def test_prompts_and_no_progress_may_come_from_the_config_file(tmp_path):
    cfg, args = _cfg(tmp_path, "prompts: pool.csv\nno_progress: true\nbudget: 4\n")
    assert cfg.input.path == "pool.csv" and args.no_progress and cfg.loop.budget == 4
    cfg, _ = _cfg(tmp_path, "prompts: pool.csv\n", "other.csv")
    assert cfg.input.path == "other.csv"  # the command line wins


def test_no_prompts_anywhere_is_one_line(capsys):
    assert main(["--budget", "3"]) == 1
    err = capsys.readouterr().err
    assert "no input: give PROMPTS" in err


def test_a_config_file_may_use_a_renamed_key_with_a_note(tmp_path, capsys):
    cfg, _ = _cfg(tmp_path, "retries: 2\n", "p.csv")
    assert cfg.oracle.judge.retries == 2
    assert "'retries' is renamed 'judge_retries'" in capsys.readouterr().err


def test_the_spending_caps_old_section_in_a_config_file_works_with_a_note(tmp_path, capsys):
    cfg, _ = _cfg(tmp_path, "oracle:\n  max_cost: 2.5\n  dry_run: true\n  temperature: 0.5\n",
                  "p.csv")
    assert cfg.spend.max_cost == 2.5 and cfg.spend.dry_run is True
    assert cfg.oracle.temperature == 0.5  # the rest of the section stays the oracle's
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "'oracle.max_cost' is now 'spend.max_cost'" in err[0]
    cfg, _ = _cfg(tmp_path, "max_cost: 3\nspend:\n  max_requests: 7\n", "p.csv")
    assert cfg.spend.max_cost == 3 and cfg.spend.max_requests == 7  # today's keys, no note
    assert capsys.readouterr().err == ""


def test_an_unknown_key_never_suggests_itself(tmp_path, capsys):
    (tmp_path / "c.yaml").write_text("no_progres: true\n")
    assert main([str(tmp_path / "p.csv"), "--config", str(tmp_path / "c.yaml")]) == 1
    err = capsys.readouterr().err
    assert "did you mean 'no_progress'" in err
