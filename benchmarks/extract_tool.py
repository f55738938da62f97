"""Load the paper extractor of a ``tools/`` folder for the extract_* benchmarks.

The extractor is the package ``tools/paper_extractor/`` behind the entry point
``tools/extract_paper.py``; an older checkout has the single module ``tools/extract_paper.py``.
Both expose ``extract(pdf)`` and ``write_outputs(result, out_dir, force=...)``. Each folder is
loaded under a name of its own, so one run can measure two versions side by side (``--baseline``).
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
TOOLS = ROOT / "template" / "tools"


def entry_point(tools: Path) -> Path:
    """The command line of the extractor in `tools`."""
    return tools / "extract_paper.py"


def load_tool(tools: Path = TOOLS) -> ModuleType:
    """The extractor in `tools`: the package when there is one, else the single module."""
    package = tools / "paper_extractor"
    path = package / "__init__.py" if package.is_dir() else entry_point(tools)
    digest = hashlib.sha1(str(tools.resolve()).encode()).hexdigest()[:8]
    name = f"extractor_under_test_{digest}"
    locations = [str(package)] if package.is_dir() else None
    spec = importlib.util.spec_from_file_location(name, path, submodule_search_locations=locations)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module
