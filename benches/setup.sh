#!/usr/bin/env bash
# Installs the peers the benchmarks compare Custos with, idempotently, into a virtual
# environment outside the clone, and prints the path of its Python.
# Peers: DuckDB (PyPI `duckdb`) and cedarpy (PyPI `cedarpy`, Cedar's Python bindings).
set -euo pipefail
venv="${CUSTOS_BENCH_VENV:-$HOME/.cache/custos-bench/venv}"
if [ ! -x "$venv/bin/python" ]; then
  python3 -m venv "$venv" >&2
fi
if ! "$venv/bin/python" -c "import duckdb, cedarpy" 2>/dev/null; then
  "$venv/bin/pip" install --quiet "duckdb>=1.1" "cedarpy>=4.12.2" >&2
fi
echo "$venv/bin/python"
