#!/usr/bin/env bash
# The Snowflake emulator for the snowflake engine's tests (pipelines/engines/snowflake/provision.ts),
# installed into its own virtualenv under the de-lab cache (~/.cache/de-lab/fakesnow-<version>),
# so neither CI nor a user's Python gets packages it did not ask for. Run by `npm test` (pretest)
# and by .ci/run; a no-op when already installed.
# Pinned: fakesnow declares snowflake-connector-python without an upper bound, and connector 5.x
# removed the module fakesnow 0.12.1 imports (snowflake.connector.converter) — import fails.
set -euo pipefail
VERSION=0.12.1
CACHE="${DE_LAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/de-lab}"
VENV="$CACHE/fakesnow-$VERSION"
PY="$VENV/bin/python"
# Importing fakesnow makes a fakesnow_bucket_* dir with tempfile (at module load) that nothing
# removes: every Python run here gets a TMPDIR of its own, gone when the script ends.
tmp=$(mktemp -d -t de-lab-fakesnow-sh-XXXXXX)
trap 'rm -rf "$tmp"' EXIT
export TMPDIR="$tmp"
check='import importlib.metadata as m, sys; import fakesnow, uvicorn, starlette; sys.exit(0 if m.version("fakesnow") == "'$VERSION'" and m.version("snowflake-connector-python") == "4.8.1" else 1)'
if [ -f "$VENV/.complete" ] && "$PY" -c "$check" 2>/dev/null; then
  exit 0
fi
BASE="${FAKESNOW_BASE_PYTHON:-python3}"
if ! command -v "$BASE" >/dev/null; then
  echo "fakesnow: no python3 on PATH — the Snowflake emulator tests need Python 3.9+ (or set SNOWFLAKE_* for a real account)" >&2
  exit 0
fi
echo "fakesnow: installing fakesnow[server]==$VERSION into $VENV (once)"
# Complete only once the marker exists: a killed install is redone, never half-used.
rm -rf "$VENV"
if ! "$BASE" -m venv "$VENV"; then
  rm -rf "$VENV"
  echo "fakesnow: '$BASE -m venv' failed (on Debian: apt-get install python3-venv) — the Snowflake emulator tests will say what is missing" >&2
  exit 0
fi
"$PY" -m pip install --quiet --disable-pip-version-check "fakesnow[server]==$VERSION" "snowflake-connector-python==4.8.1"
"$PY" -c "$check"
touch "$VENV/.complete"
echo "fakesnow: $VERSION ready"
