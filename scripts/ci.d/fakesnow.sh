#!/usr/bin/env bash
# The Snowflake emulator for the snowflake engine's tests (pipelines/engines/snowflake/provision.ts),
# in its own virtualenv under the de-lab cache (~/.cache/de-lab/fakesnow-<version>). Run by
# `npm test` (pretest) and by .ci/run; a no-op when already installed.
# Pinned: fakesnow declares snowflake-connector-python without an upper bound, and connector 5.x
# removed the module fakesnow 0.12.1 imports (snowflake.connector.converter) — import fails.
set -euo pipefail
. "$(dirname "$0")/../lib/venv.sh"
VERSION=0.12.1
ensure_venv fakesnow "fakesnow-$VERSION" \
  'import importlib.metadata as m, sys; import fakesnow, uvicorn, starlette; sys.exit(0 if m.version("fakesnow") == "'$VERSION'" and m.version("snowflake-connector-python") == "4.8.1" else 1)' \
  'the Snowflake emulator tests need Python 3.9+ (or set SNOWFLAKE_* for a real account)' \
  "fakesnow[server]==$VERSION" "snowflake-connector-python==4.8.1"
