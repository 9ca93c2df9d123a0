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
    assert "(default: 2)" in text and "(default: dts)" in text and "(default: auto)" in text
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


def _fails(capsys, argv: list[str], code: int = 1) -> str:
    """main(argv) fails with `code`; its stderr (one error line, no traceback)."""
    try:
        got = main(argv)
    except SystemExit as e:
        got = e.code
    err = capsys.readouterr().err
    assert got == code and "Traceback" not in err, err
    return err


@pytest.mark.parametrize("old, new", [("--retries", "--judge_retries"),
                                      ("--concurrency", "--judge_concurrency"),
                                      ("--api_key_env", "--judge_api_key_env"),
                                      ("--price_in", "--judge_price_in")])
def test_a_renamed_flag_works_for_one_release_with_a_note(capsys, old, new):
    from aeuf.cli import _available, build_parser
    from aeuf.commands.run import config_from_args

    value = "MY_KEY" if old == "--api_key_env" else "3"
    args = build_parser(_available()).parse_args(["run", "p.csv", old, value])
    cfg = config_from_args(args)
    field = new.removeprefix("--judge_")
    assert str(getattr(cfg.oracle.judge, field)) in (value, f"{value}.0")
    err = capsys.readouterr().err
    assert f"{old} is renamed {new}" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("argv, hint", [
    (["x.csv", "--judge_retrys", "2"], "did you mean '--judge_retries'"),
    (["embed", "x.csv", "--dry_run"], "--dry_run is an option of `aeuf run`, not of `aeuf embed`"),
    (["judge", "x.jsonl", "--self_label_accuracy", "0.9"], "is an option of `aeuf run`"),
    (["judge", "x.jsonl", "--stop_when_agreement", "0.9"], "is an option of `aeuf run`"),
    (["judge", "x.jsonl", "--cheap_judge_model", "m"], "is an option of `aeuf run`"),
])
def test_a_hint_names_a_flag_the_command_has_never_the_typo_itself(capsys, argv, hint):
    err = _fails(capsys, argv, code=2)
    assert hint in err
    bad = next(a for a in argv if a.startswith("--"))
    assert f"did you mean '{bad}'" not in err


def test_judge_help_lists_only_what_it_honours():
    text = _help("judge", "--help")
    assert "--cheap_judge" not in text and "--stop_when_agreement" not in text
    assert "--judge_model" in text and "--judge FILE" in text


def test_the_missing_key_error_names_the_real_flag(monkeypatch):
    from aeuf.backends.openai_client import ClientSettings, api_key
    from aeuf.errors import ConfigError

    monkeypatch.delenv("AEUF_TEST_NO_SUCH_KEY", raising=False)
    with pytest.raises(ConfigError) as e:
        api_key(ClientSettings(base_url="https://example.com/v1",
                               api_key_env="AEUF_TEST_NO_SUCH_KEY"))
    assert "--judge_api_key_env" in str(e.value) and "with --api_key_env)" not in str(e.value)


def test_options_may_come_before_prompts(capsys):
    err = _fails(capsys, ["--num_instructions", "0", "dataset/prompts.csv"])
    assert "--num_instructions 0: must be at least 1" in err and "invalid choice" not in err


@pytest.mark.parametrize("argv, says", [
    (["x.csv", "--max_cost", "-1"], "--max_cost -1.0: must be at least 0"),
    (["x.csv", "--judge_concurrency", "0"], "--judge_concurrency 0: must be at least 1"),
    (["x.csv", "--cheap_judge_retries", "-2"], "--cheap_judge_retries -2: must be at least 0"),
    (["x.csv", "--check_fraction", "2"], "--check_fraction 2.0: must be between 0 and 1"),
    (["x.csv", "--west_of_n", "--all_pairs"], "--west_of_n True: exports one pair"),
])
def test_impossible_values_are_refused_in_one_line(capsys, argv, says):
    err = _fails(capsys, argv)
    assert says in err and len(err.strip().splitlines()) == 1


def test_a_key_passed_as_the_variable_name_is_refused_and_never_echoed(capsys):
    secret = "sk-live-0123456789abcdef"
    err = _fails(capsys, ["x.csv", "--judge_api_key_env", secret])
    assert "never a key" in err and secret not in err


def test_version_and_clean_subcommand_help():
    assert _help("--version").strip() == "aeuf 0.1.0"
    for sub, usage in (("run", "usage: aeuf [run] [PROMPTS] [options]"),
                       ("generate", "usage: aeuf generate PROMPTS --models MODEL ... [options]"),
                       ("judge", "usage: aeuf judge INPUT [options]")):
        text = _help(sub, "--help")
        assert text.startswith(usage), text[:200]
        assert "aeuf COMMAND" not in text and "INPUT." not in text and "ORACLE." not in text
        for line in " ".join(text.split()).split("(default:")[1:]:
            assert line.count(")") >= 1  # one default each: never "(default: x) (default: y)"
        assert "(default: every prompt once) (default" not in " ".join(text.split())


def test_features_help_names_every_feature_part():
    """--features' help lists the parts a user may join (the registry's names, 'rm' too)."""
    import dataclasses

    from aeuf.config import FeatureConfig
    from aeuf.embed import PARTS

    text = next(f.metadata["help"] for f in dataclasses.fields(FeatureConfig)
                if f.name == "features")
    named = text.split(";")[0]
    assert all(f" {part}," in named or f" {part}" == named[-len(part) - 1:]
               for part in PARTS.names()), named
