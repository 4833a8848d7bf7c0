"""Several models in one run: `inspect` and `check` with many MODELs and globs.

Each model's result must equal what a run on that model alone reports, failures must be recorded
without hiding the others, and the exit code must be the worst one.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from initcli.cli import cli

MODELS = Path(__file__).resolve().parent.parent / "examples" / "models"


def _invoke(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def _json(expected: int, *args: str) -> dict:
    code, out, err = _invoke(*args, "--format", "json")
    assert code == expected, err
    return json.loads(out)


def test_inspect_many_equals_each_model_alone():
    names = ["mlp.keras", "cnn.h5", "rnn.keras"]
    many = _json(0, "inspect", *(str(MODELS / name) for name in names))
    alone = [_json(0, "inspect", str(MODELS / name)) for name in names]
    assert [model["source"] for model in many["models"]] == [model["source"] for model in alone]
    assert [model["weights"] for model in many["models"]] == [model["weights"] for model in alone]
    assert many["totals"]["weights"] == sum(len(model["weights"]) for model in alone) == 41
    assert many["errors"] == []


def test_a_quoted_glob_is_expanded_in_sorted_order(tmp_path):
    for name in ("b.keras", "a.keras"):
        shutil.copy(MODELS / "mlp.keras", tmp_path / name)
    (tmp_path / "sub").mkdir()
    shutil.copy(MODELS / "cnn.keras", tmp_path / "sub" / "c.keras")
    many = _json(0, "inspect", str(tmp_path / "*.keras"))
    assert [Path(model["source"]).name for model in many["models"]] == ["a.keras", "b.keras"]
    deep = _json(0, "check", str(tmp_path / "**" / "*.keras"))
    assert [Path(model["source"]).name for model in deep["models"]] == ["a.keras", "b.keras", "c.keras"]


def test_a_glob_matching_nothing_is_a_usage_error(tmp_path):
    code, _, err = _invoke("check", str(tmp_path / "*.keras"))
    assert code == 2
    assert "matches no file" in err and "Usage: cli check" in err


def test_an_unreadable_model_is_reported_and_the_others_still_run(tmp_path):
    broken = tmp_path / "broken.keras"
    broken.write_bytes(b"PK\x03\x04 not really a zip")
    code, out, err = _invoke("check", str(MODELS / "mlp.keras"), str(broken), str(MODELS / "cnn.keras"))
    assert code == 1  # could not read one file: worse than a failed check
    assert err.count("passed:") == 2 and f"Error: {broken}" in err
    assert "3 models: FAILED: 2 passed, 0 failed, 1 unreadable" in err
    # An unreadable file outranks a failed check (exit 1, not 3): the gate could not see everything.
    worst, _, _ = _invoke("check", str(MODELS / "cnn.weights.h5"), str(broken))
    assert worst == 1
    document = _json(1, "inspect", str(MODELS / "mlp.keras"), str(broken))
    assert [error["source"] for error in document["errors"]] == [str(broken)]
    assert document["errors"][0]["exit_code"] == 1 and "internal error" not in document["errors"][0]["message"]
    assert len(document["models"]) == 1


def test_check_many_fails_when_any_model_fails_and_says_which():
    code, out, err = _invoke("check", str(MODELS / "mlp.keras"), str(MODELS / "cnn.weights.h5"))
    assert code == 3
    assert f"{MODELS / 'cnn.weights.h5'}: error: (model): [distribution] tested nothing" in out
    assert "2 models: FAILED: 1 passed, 1 failed, 0 unreadable" in err
    github_code, github, _ = _invoke(
        "check", str(MODELS / "mlp.keras"), str(MODELS / "cnn.weights.h5"), "--format", "github"
    )
    assert github_code == 3
    assert f"::error file={MODELS / 'cnn.weights.h5'}" in github
    assert "::notice title=initcli::2 models: FAILED" in github


def test_usage_errors_are_found_once_before_any_model_is_read():
    code, _, err = _invoke("check", str(MODELS / "mlp.keras"), str(MODELS / "cnn.keras"), "--only", "rules")
    assert code == 2
    assert err.count("--only rules needs --rules") == 1


def test_several_models_with_spec_is_a_usage_error(tmp_path):
    code, _, err = _invoke(
        "inspect", str(MODELS / "mlp.keras"), str(MODELS / "cnn.keras"), "--spec", str(tmp_path / "s.yaml")
    )
    assert code == 2


@pytest.mark.parametrize("output_format", ["csv", "markdown"])
def test_flat_formats_carry_the_source_of_each_row(output_format):
    code, out, _ = _invoke("inspect", str(MODELS / "mlp.keras"), str(MODELS / "cnn.keras"), "--format", output_format)
    assert code == 0
    assert out.count(str(MODELS / "mlp.keras")) == 6 and out.count(str(MODELS / "cnn.keras")) == 13


def test_a_table_run_ends_with_the_total():
    code, out, _ = _invoke("inspect", str(MODELS / "mlp.keras"), str(MODELS / "cnn.keras"))
    assert code == 0
    assert out.rstrip().splitlines()[-1] == "2 models: 19 weights, 259,236 parameters: 19 consistent"


@pytest.mark.parametrize(
    ("raised", "said"),
    [
        (OSError(5, "Input/output error"), "cannot read (Input/output error)"),
        (MemoryError(), "not enough memory to read it"),
    ],
)
def test_a_read_the_system_refuses_is_said_of_the_file_not_called_internal(monkeypatch, raised, said):
    """An EIO or an exhausted memory while reading one model of several: one line naming the file
    and what the system said, exit 1, and the other models still reported."""
    from initcli import api

    real = api.inspect_model
    broken = str(MODELS / "cnn.h5")

    def failing(model, **options):
        if model == broken:
            raise raised
        return real(model, **options)

    monkeypatch.setattr(api, "inspect_model", failing)
    document = _json(1, "inspect", str(MODELS / "mlp.keras"), broken)
    assert document["errors"] == [{"source": broken, "message": f"{broken}: {said}", "exit_code": 1}]
    assert len(document["models"]) == 1


@pytest.mark.parametrize(
    ("raised", "said"),
    [
        (OSError(5, "Input/output error", "/data/model.keras"), "Error: /data/model.keras: Input/output error"),
        (MemoryError(), "Error: not enough memory"),
    ],
)
def test_a_system_refusal_with_one_model_is_one_line_and_exit_1(monkeypatch, raised, said):
    from initcli import api

    def failing(model, **options):
        raise raised

    monkeypatch.setattr(api, "inspect_model", failing)
    code, out, err = _invoke("inspect", str(MODELS / "mlp.keras"))
    assert (code, out, err.splitlines()) == (1, "", [said])


def _failing_on(monkeypatch, broken: str, raised: Exception) -> None:
    from initcli import api

    real = api.inspect_model

    def failing(model, **options):
        if model == broken:
            raise raised
        return real(model, **options)

    monkeypatch.setattr(api, "inspect_model", failing)


def test_a_bug_met_on_one_model_of_several_is_called_internal_and_the_others_still_run(monkeypatch):
    """A ValueError no reader anticipated is a bug of ours, not a file that "cannot read": said in the
    words a run on that model alone uses, after the file's name; exit 1; the other model reported."""
    broken = str(MODELS / "cnn.h5")
    _failing_on(monkeypatch, broken, ValueError("boom"))
    monkeypatch.delenv("INITCLI_DEBUG", raising=False)
    alone = "internal error: ValueError: boom (set INITCLI_DEBUG=1 for a traceback)"
    document = _json(1, "inspect", str(MODELS / "mlp.keras"), broken)
    assert document["errors"] == [{"source": broken, "message": f"{broken}: {alone}", "exit_code": 1}]
    assert [model["source"] for model in document["models"]] == [str(MODELS / "mlp.keras")]
    assert _invoke("inspect", broken) == (1, "", f"Error: {alone}\n")


def test_internal_errors_keep_their_traceback_under_initcli_debug(monkeypatch):
    broken = str(MODELS / "cnn.h5")
    _failing_on(monkeypatch, broken, ValueError("boom"))
    monkeypatch.setenv("INITCLI_DEBUG", "1")
    result = CliRunner().invoke(cli, ["inspect", str(MODELS / "mlp.keras"), broken])
    assert isinstance(result.exception, ValueError) and str(result.exception) == "boom"
