"""Glob patterns of model files, expanded within the command's budget.

`glob.glob(pattern, recursive=True)` follows symlinked directories while it walks `**`: a quoted
`'models/**'` over a symlink loop (`models/loop -> .`) walks `loop/loop/loop/...` until the kernel
refuses the path, each level fanning out again, and never returns in practice. It also has no bound
on how many files it yields and returns them in directory order.

`expand` matches as `glob.glob(..., recursive=True)` does (the same hidden-name rule, `**` for zero
or more folders, a trailing `**` naming folders too), except that:

- `**` never descends into a symlinked directory, nor takes one as one of its folders (a trailing
  `**` still names the symlink itself, as pathlib's `glob(recurse_symlinks=False)` of Python 3.13
  does; a pattern's literal or single-wildcard parts still pass through symlinks: their depth is
  the pattern's, so they cannot loop);
- the walk is at most `Budget.max_depth` folders deep below the `**`;
- every directory entry looked at spends from the budget's clock (`--timeout`), and the matches of
  all of a command's patterns together are at most `Budget.max_matches`;
- the result is sorted, so the same tree gives the same order on every machine.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterator

from initcli.safety.budget import Budget

_MAGIC = frozenset("*?[")


def has_magic(text: str) -> bool:
    """Whether `text` holds a glob wildcard (`*`, `?` or `[`)."""
    return bool(_MAGIC & set(text))


def expand(pattern: str, budget: Budget, already: int = 0) -> list[str]:
    """The paths matching `pattern`, sorted; `already` is how many the command's other patterns matched.

    Raises:
        BudgetError: more than `budget.max_matches` matches in all (with `already`), a `**` walk
            deeper than `budget.max_depth` folders, or the command's deadline passed.
    """
    walk = _Walk(pattern, budget)
    found: set[str] = set()
    for path in walk.iglob(pattern, dironly=False):
        if path and path not in found:  # "" is a top-level `**` matching zero folders: glob drops it too
            found.add(path)
            budget.check_matches(already + len(found), walk.what)
    return sorted(found)


class _Walk:
    def __init__(self, pattern: str, budget: Budget) -> None:
        from initcli.safety.files import shown

        self.budget = budget
        self.what = f"the pattern {shown(pattern)!r}"

    def iglob(self, pathname: str, dironly: bool) -> Iterator[str]:
        dirname, basename = os.path.split(pathname)
        if not has_magic(pathname):
            if (basename and os.path.lexists(pathname)) or (not basename and os.path.isdir(dirname)):
                yield pathname
            return
        if not dirname:
            yield from self._in_dir("", basename, dironly)
            return
        dirs: Iterator[str] | list[str]
        if dirname != pathname and has_magic(dirname):
            dirs = self.iglob(dirname, dironly=True)
        else:
            dirs = [dirname]
        for folder in dirs:
            for name in self._in_dir(folder, basename, dironly):
                yield os.path.join(folder, name)

    def _in_dir(self, folder: str, basename: str, dironly: bool) -> Iterator[str]:
        if basename == "**":
            yield ""  # `**` matches zero folders: the folder itself
            yield from self._below(folder, dironly, 1)
        elif has_magic(basename):
            names = [name for name, _ in self._entries(folder, dironly)]
            if not _hidden(basename):
                names = [name for name in names if not _hidden(name)]
            yield from fnmatch.filter(names, basename)
        elif (basename and os.path.lexists(os.path.join(folder, basename))) or (not basename and os.path.isdir(folder)):
            yield basename

    def _below(self, folder: str, dironly: bool, depth: int) -> Iterator[str]:
        """Every non-hidden name under `folder`, recursively, never through a symlinked directory."""
        self.budget.check_depth(depth, f"{self.what}: the folders under {folder or os.curdir!r}")
        for name, real_folder in self._entries(folder, dironly):
            if _hidden(name) or (dironly and not real_folder):
                continue  # a `**` folder is a real one: `loop/*.keras` would be the same file again
            yield name
            if real_folder:
                for below in self._below(os.path.join(folder, name), dironly, depth + 1):
                    yield os.path.join(name, below)

    def _entries(self, folder: str, dironly: bool) -> list[tuple[str, bool]]:
        """(name, is a directory and not a symlink) of `folder`'s entries; [] for what cannot be listed."""
        entries = []
        try:
            with os.scandir(folder or os.curdir) as scan:
                for entry in scan:
                    self.budget.tick(self.what)
                    try:
                        is_dir = entry.is_dir()  # through symlinks, as glob matches them
                        real_folder = is_dir and not entry.is_symlink()
                    except OSError:
                        is_dir = real_folder = False
                    if dironly and not is_dir:
                        continue
                    entries.append((entry.name, real_folder))
        except OSError:
            return []
        return entries


def _hidden(name: str) -> bool:
    return name.startswith(".")
