"""Writing paper/paper.md and docs/CHECKLIST.md atomically: both files or neither."""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from pathlib import Path

from .checklist import render_checklist
from .markdown import render_markdown
from .records import GENERATED_MARKER, ExtractError, PaperExtract


def output_paths(out_dir: Path) -> tuple[Path, Path]:
    return out_dir / "paper" / "paper.md", out_dir / "docs" / "CHECKLIST.md"


def write_outputs(
    extract: PaperExtract, out_dir: Path, *, force: bool = False
) -> tuple[Path, Path]:
    """Write paper/paper.md and docs/CHECKLIST.md under out_dir, both or neither."""
    paper_md, checklist = output_paths(Path(out_dir))
    _refuse_ticked_checklist(checklist, force)
    _atomic_write_all(
        [(paper_md, render_markdown(extract)), (checklist, render_checklist(extract))]
    )
    return paper_md, checklist


def _refuse_ticked_checklist(path: Path, force: bool) -> None:
    if force or not path.is_file():
        return
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return
    if GENERATED_MARKER in text and re.search(r"^\s*[-*] \[[xX]\]", text, re.MULTILINE):
        raise ExtractError(
            f"{path} already has ticked items; pass --force to regenerate it"
            " (the ticks would be lost)"
        )


def _atomic_write_all(items: list[tuple[Path, str]]) -> None:
    created: list[Path] = []
    staged: list[tuple[Path, Path]] = []
    done: list[tuple[Path, bytes | None]] = []
    try:
        for target, text in items:
            _make_dirs(target.parent, created)
            staged.append((_write_temp(target, text), target))
        for tmp, target in staged:
            backup = target.read_bytes() if target.is_file() else None
            os.replace(tmp, target)
            done.append((target, backup))
    except BaseException as exc:
        _roll_back(staged, done, created)
        if isinstance(exc, OSError):
            raise ExtractError(f"cannot write the outputs: {exc}") from exc
        raise


def _write_temp(target: Path, text: str) -> Path:
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(name, 0o644)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name)


def _make_dirs(folder: Path, created: list[Path]) -> None:
    missing: list[Path] = []
    probe = folder
    while not probe.exists():
        missing.append(probe)
        probe = probe.parent
    for path in reversed(missing):
        path.mkdir()
        created.append(path)


def _roll_back(
    staged: list[tuple[Path, Path]], done: list[tuple[Path, bytes | None]], created: list[Path]
) -> None:
    for target, backup in reversed(done):
        with contextlib.suppress(OSError):
            if backup is None:
                target.unlink(missing_ok=True)
            else:
                target.write_bytes(backup)
    for tmp, _ in staged:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
    for folder in reversed(created):
        with contextlib.suppress(OSError):
            folder.rmdir()
