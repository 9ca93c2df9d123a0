"""What would fail late is refused first, before anything is read, embedded or written: a
local judge without llama-cpp-python or its model, --push_to_hub with the hub off, an export
format that does not exist; and a setting that cannot take effect (--west_of_n under a rule
that already exports the best and the worst response) is refused, not ignored."""

import importlib.util

import pytest

from aeuf.cli import main

pytest_plugins = ["servers"]


def _refused(capsys, tmp_path, *argv: str) -> str:
    out = tmp_path / "run"
    code = main([str(tmp_path / "missing.csv"), "--output_dir", str(out), *argv])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1, err
    assert not out.exists()  # nothing written, and the (absent) input never read
    return err[0]


def test_a_local_judge_without_llama_cpp_is_refused_first(tmp_path, capsys, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "llama_cpp" else real(name, *a))
    assert "needs llama-cpp-python" in _refused(capsys, tmp_path, "--oracle", "local")


def test_a_local_judge_with_a_missing_model_is_refused_first(tmp_path, capsys):
    pytest.importorskip("llama_cpp")
    err = _refused(capsys, tmp_path, "--oracle", "local", "--local_model", "/no/such.gguf")
    assert "/no/such.gguf: no such GGUF file" in err


def test_push_to_hub_with_the_hub_off_is_refused_first(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert "the hub is off" in _refused(capsys, tmp_path, "--push_to_hub", "me/data")


def test_an_unknown_format_in_a_config_file_is_refused_first(tmp_path, capsys):
    (tmp_path / "c.yaml").write_text("format: KTO\n")
    err = _refused(capsys, tmp_path, "--config", str(tmp_path / "c.yaml"), "--dry_run")
    assert "export.format = 'KTO': must be one of standard, conversational, kto" in err


@pytest.mark.parametrize("rules, effect", [(("dts", "aepo"), False),
                                           (("ultrafeedback", "random"), True)])
def test_west_of_n_is_refused_where_it_changes_nothing(rules, effect):
    from aeuf.config import AcquireConfig, ExportConfig, LoopConfig, RunConfig
    from aeuf.run.checks import ineffective

    cfg = RunConfig(acquire=AcquireConfig(rule=rules[0], num_annotations=3),
                    loop=LoopConfig(initial_rule=rules[1]),
                    export=ExportConfig(west_of_n=True))
    problem = ineffective(cfg, "replay")
    assert (problem is None) == effect, problem
    if not effect:
        assert problem.startswith("--west_of_n has no effect")
