#!/usr/bin/env bash
# Create .peer-venv with the PyPI package nested-learning 0.2.0, for side-by-side benchmarks only.
# It shares our import name (nested_learning), so it must never be installed into .venv.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -x benchmarks/.peer-venv/bin/python ]; then
  uv venv -q --python 3.11 benchmarks/.peer-venv
fi
VIRTUAL_ENV="$PWD/benchmarks/.peer-venv" uv pip install -q "nested-learning==0.2.0"
echo "peer environment ready: benchmarks/.peer-venv/bin/python"
