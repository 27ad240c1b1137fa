#!/usr/bin/env bash
# The Snowflake emulator for the snowflake engine's tests (pipelines/engines/snowflake/provision.ts).
# Pinned: fakesnow declares snowflake-connector-python without an upper bound, and connector 5.x
# removed the module fakesnow 0.12.1 imports (snowflake.connector.converter) — import fails.
set -euo pipefail
PY="${FAKESNOW_PYTHON:-python3}"
if "$PY" -c 'import importlib.metadata as m, sys; sys.exit(0 if m.version("fakesnow") == "0.12.1" and m.version("snowflake-connector-python") == "4.8.1" else 1)' 2>/dev/null; then
  echo "fakesnow 0.12.1 already installed"
  exit 0
fi
"$PY" -m pip install --quiet --disable-pip-version-check "fakesnow[server]==0.12.1" "snowflake-connector-python==4.8.1"
"$PY" -c 'import fakesnow, uvicorn, starlette; print("fakesnow", __import__("importlib.metadata").metadata.version("fakesnow"))'
