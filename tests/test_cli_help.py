"""The CLI explains itself: the main form with an example in `aeuf --help`, every flag's
default shown, a mistyped flag answered with the closest valid one, --config files."""

import subprocess
import sys

import pytest

from aeuf.cli import main
from aeuf.commands.flags import flags_of
from aeuf.config import RunConfig


def _help(*args: str) -> str:
    r = subprocess.run([sys.executable, "-m", "aeuf", *args], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_top_level_help_shows_the_main_form_with_an_example():
    text = _help("--help")
    assert "aeuf PROMPTS [--num_responses N] [--num_annotations K]" in text
    assert "aeuf dataset/prompts.csv --num_responses 8 --num_annotations 2" in text
    for sub in ("run", "generate", "judge", "embed", "bench"):
        assert sub in text


def test_every_main_flag_is_listed_with_its_default():
    text = " ".join(_help("run", "--help").split())
    for flag in flags_of(RunConfig):
        assert f"--{flag.name}" in text, flag.name
    assert "(default: 2)" in text and "(default: dts)" in text and "(default: minilm+stats)" in text
    assert text.count("(default:") >= len(list(flags_of(RunConfig)))


@pytest.mark.parametrize("typo, fix", [("--num_respones", "--num_responses"),
                                       ("--judge_modle", "--judge_model"),
                                       ("--bugdet", "--budget")])
def test_a_typo_suggests_the_closest_flag(tmp_path, capsys, typo, fix):
    with pytest.raises(SystemExit) as e:
        main([str(tmp_path / "x.csv"), typo, "3"])
    assert e.value.code == 2
    err = capsys.readouterr().err
    assert f"did you mean '{fix}'" in err and "Traceback" not in err


def test_a_config_file_sets_flags_and_flags_override_it(tmp_path):
    import argparse

    from aeuf.commands.run import add_arguments, config_from_args

    (tmp_path / "c.yaml").write_text("num_annotations: 3\nrule: infomax\nhead:\n  members: 4\n")
    (tmp_path / "c.toml").write_text('[loop]\nseed = 7\n[acquire]\nrule = "deltaucb"\n')
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    cfg = config_from_args(parser.parse_args(["p.csv", "--config", str(tmp_path / "c.yaml"),
                                              "--rule", "dts"]))
    assert (cfg.acquire.num_annotations, cfg.acquire.rule, cfg.head.members) == (3, "dts", 4)
    cfg = config_from_args(parser.parse_args(["p.csv", "--config", str(tmp_path / "c.toml")]))
    assert (cfg.loop.seed, cfg.acquire.rule, cfg.input.path) == (7, "deltaucb", "p.csv")


def test_a_bad_config_file_is_one_line(tmp_path, capsys):
    (tmp_path / "c.yaml").write_text("num_anotations: 3\n")
    assert main([str(tmp_path / "p.csv"), "--config", str(tmp_path / "c.yaml")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "num_anotations" in err[0] and "num_annotations" in err[0]
