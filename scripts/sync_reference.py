"""Bring reference/nested_learning in step with template/ (its template-managed files only).

    uv run python scripts/sync_reference.py

Renders the template with the reference's recorded answers, copies every template-managed file over
the reference, re-creates user-owned files only where they are missing, and rewrites the answers
file. User-owned files (the Nested Learning code, configs, docs, notebook, demo) are never touched.
`git diff` afterwards shows exactly what the template changed.
"""

from __future__ import annotations

import fnmatch
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml
from copier import run_copy

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT / "reference" / "nested_learning"
ANSWERS = ".copier-answers.yml"


def user_owned_patterns() -> list[str]:
    return list(yaml.safe_load((ROOT / "copier.yml").read_text())["_skip_if_exists"])


def recorded_answers() -> dict[str, Any]:
    answers = yaml.safe_load((REFERENCE / ANSWERS).read_text())
    return {k: v for k, v in answers.items() if not k.startswith("_")}


def main() -> int:
    patterns = user_owned_patterns()
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    with tempfile.TemporaryDirectory() as tmp:
        fresh = Path(tmp) / "fresh"
        run_copy(
            str(ROOT),
            str(fresh),
            data=recorded_answers(),
            defaults=True,
            unsafe=True,
            skip_tasks=True,
            quiet=True,
            vcs_ref="HEAD",
        )
        changed = []
        for path in sorted(p for p in fresh.rglob("*") if p.is_file()):
            rel = str(path.relative_to(fresh))
            target = REFERENCE / rel
            owned = any(fnmatch.fnmatch(rel, pattern) for pattern in patterns)
            if rel == ANSWERS or (owned and target.exists()):
                continue
            if not target.exists() or target.read_bytes() != path.read_bytes():
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)
                changed.append(rel)
        answers = (fresh / ANSWERS).read_text()
    # Keep copier's own formatting; the template is this repository, so a relative source lets
    # `copier update` run inside the reference.
    answers = re.sub(r"(?m)^_commit: .*$", f"_commit: {commit}", answers)
    answers = re.sub(r"(?m)^_src_path: .*$", "_src_path: ../..", answers)
    (REFERENCE / ANSWERS).write_text(answers)
    for rel in changed:
        print(f"updated {rel}")
    print(f"{len(changed)} file(s) updated from template/ at {commit}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
