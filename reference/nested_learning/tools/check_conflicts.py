"""Fail when a merge left conflict markers or ``*.rej`` files behind (e.g. after ``copier update``).

    uv run python tools/check_conflicts.py     # the files git tracks, plus untracked ones

Exit 0 when clean; exit 1 listing every file and line that needs a hand merge. The pre-commit
config runs it on every commit, so a half-merged update cannot be committed by accident.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

MARKER = re.compile(r"^(<{7}|>{7})( |$)|^={7}$")


def candidate_files(root: Path) -> list[Path]:
    """Tracked and untracked (not ignored) files under ``root``; every file when git is absent."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
            cwd=root,
            capture_output=True,
            check=True,
        ).stdout.decode()
        return [root / name for name in listed.split("\0") if name]
    except (OSError, subprocess.CalledProcessError):
        skip = {".git", ".venv", "runs", "__pycache__"}
        return [p for p in root.rglob("*") if p.is_file() and not skip.intersection(p.parts)]


def find_problems(root: Path) -> list[str]:
    problems = []
    for path in candidate_files(root):
        if path.suffix == ".rej":
            problems.append(
                f"{path.relative_to(root)}: rejected hunk from an update; merge it by hand"
            )
            continue
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except (UnicodeDecodeError, OSError):
            continue  # binary or unreadable: not a text merge
        for number, line in enumerate(lines, start=1):
            if MARKER.match(line):
                problems.append(f"{path.relative_to(root)}:{number}: conflict marker {line[:7]!r}")
    return problems


def main(argv: list[str] | None = None) -> int:
    root = Path(argv[0] if argv else ".").resolve()
    problems = find_problems(root)
    for problem in problems:
        print(problem)
    if problems:
        print(
            f"{len(problems)} unresolved merge conflict(s): resolve them, then commit.",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
