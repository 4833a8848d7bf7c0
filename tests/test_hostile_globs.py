"""Quoted glob patterns of MODELs (issue 24): no symlink loop followed, a match limit, a stable order.

The oracle for what a pattern matches is the standard library's `glob.glob(recursive=True)` on trees
without symlinked folders (where it is bounded); the attacks are trees made here.
"""

from __future__ import annotations

import glob
import os
import shutil
from pathlib import Path

import pytest

from initcli.safety.budget import Budget, BudgetError
from initcli.safety.globs import expand
from tests.test_hostile_budget import assert_one_line_error, run_cli

MODELS = Path(__file__).resolve().parent.parent / "examples" / "models"


def _tree(root: Path) -> None:
    """Files and folders, hidden ones too, created out of sorted order."""
    for relative in ("z.keras", "b/y.keras", "a.keras", "b/c/x.h5", ".hidden/h.keras", "b/.h.keras", "d/e/f/g.keras"):
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"")
    (root / "empty").mkdir()


PATTERNS = [
    "*.keras",
    "**",
    "**/*.keras",
    "**/*",
    "*/**/*.h5",
    "b/**",
    "b/*/",
    "**/",
    "?.keras",
    "[ab]*",
    ".*/*.keras",
    "b/.*",
    "**/c/*",
    "d/**/g.keras",
    "*/*/",
    "no/*.keras",
]


@pytest.mark.parametrize("pattern", PATTERNS)
def test_a_pattern_matches_what_glob_matches_in_sorted_order(
    tmp_path: Path, pattern: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _tree(tmp_path)
    for prefix in (str(tmp_path) + os.sep, ""):
        if not prefix:
            monkeypatch.chdir(tmp_path)
        oracle = sorted(set(glob.glob(prefix + pattern, recursive=True)))
        assert expand(prefix + pattern, Budget()) == oracle, (prefix, pattern)


def _looped(root: Path) -> Path:
    """models/ with one model and two symlinks back to itself: `glob.glob('models/**')` never ends."""
    models = root / "models"
    models.mkdir()
    shutil.copy(MODELS / "mlp.keras", models / "mlp.keras")
    (models / "loop").symlink_to(models, target_is_directory=True)
    (models / "again").symlink_to("..", target_is_directory=True)
    return models


def test_double_star_does_not_follow_a_symlink_loop(tmp_path: Path) -> None:
    models = _looped(tmp_path)
    found = expand(str(models / "**"), Budget(timeout=20))
    assert found == sorted([str(models) + os.sep, *(str(models / name) for name in ("again", "loop", "mlp.keras"))])
    assert expand(str(models / "**" / "*.keras"), Budget(timeout=20)) == [str(models / "mlp.keras")]


def test_a_quoted_double_star_over_a_symlink_loop_inspects_the_one_model(tmp_path: Path) -> None:
    models = _looped(tmp_path)
    run = run_cli("inspect", "--format", "json", str(models / "**" / "*.keras"), env={"INITCLI_TIMEOUT": "20"})
    assert run.returncode == 0, run.stderr
    assert run.stdout.count('"source"') == 1 and "mlp.keras" in run.stdout, run.stdout[:2000]


def test_a_literal_part_still_passes_through_a_symlinked_folder(tmp_path: Path) -> None:
    models = _looped(tmp_path)
    assert expand(str(models / "loop" / "*.keras"), Budget()) == [str(models / "loop" / "mlp.keras")]


def test_more_matches_than_the_limit_is_a_one_line_error(tmp_path: Path) -> None:
    for index in range(Budget().max_matches + 1):
        (tmp_path / f"m{index:05}.keras").write_bytes(b"")
    run = run_cli("check", str(tmp_path / "*.keras"))
    assert_one_line_error(run, "matches more than 10,000 files")


def test_the_match_limit_counts_every_pattern_of_the_command(tmp_path: Path) -> None:
    for index in range(6):
        (tmp_path / f"m{index}.keras").write_bytes(b"")
    budget = Budget(max_matches=8)
    first = expand(str(tmp_path / "m[0-4].keras"), budget)
    assert len(first) == 5
    with pytest.raises(BudgetError, match="matches more than 8 files"):
        expand(str(tmp_path / "*.keras"), budget, already=len(first))


def test_a_walk_deeper_than_the_depth_limit_is_refused(tmp_path: Path) -> None:
    deep = tmp_path.joinpath(*["d"] * 70)
    deep.mkdir(parents=True)
    (deep / "m.keras").write_bytes(b"")
    with pytest.raises(BudgetError, match="nested deeper than 64 levels"):
        expand(str(tmp_path / "**" / "*.keras"), Budget())


def test_the_glob_spends_from_the_command_deadline(tmp_path: Path) -> None:
    for index in range(5000):
        (tmp_path / f"m{index}.keras").write_bytes(b"")
    spent = Budget(timeout=1)
    spent.deadline -= 2  # already past: the first clock check stops the walk
    with pytest.raises(BudgetError, match="took longer than"):
        expand(str(tmp_path / "*.keras"), spent)
