#!/usr/bin/env bash
# Great Expectations, the reference tool the quality lab's suite is compared with (claim 7 in
# tests/quality.test.ts, which skips with a reason when this is not installed), in its own
# virtualenv under the de-lab cache (~/.cache/de-lab/great-expectations-<version>). Run by .ci/run;
# a no-op when already installed. The [postgresql] extra brings SQLAlchemy and psycopg2: GX checks
# the lab's Postgres batches in place.
set -euo pipefail
VERSION=1.24.1
CACHE="${DE_LAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/de-lab}"
VENV="$CACHE/great-expectations-$VERSION"
PY="$VENV/bin/python"
check='import importlib.metadata as m, sys; import great_expectations, sqlalchemy, psycopg2; sys.exit(0 if m.version("great-expectations") == "'$VERSION'" else 1)'
if [ -f "$VENV/.complete" ] && "$PY" -c "$check" 2>/dev/null; then
  exit 0
fi
BASE="${GX_BASE_PYTHON:-python3}"
if ! command -v "$BASE" >/dev/null; then
  echo "great-expectations: no python3 on PATH — the quality lab's agreement test will be skipped" >&2
  exit 0
fi
echo "great-expectations: installing great-expectations[postgresql]==$VERSION into $VENV (once)"
# Complete only once the marker exists: a killed install is redone, never half-used.
rm -rf "$VENV"
if ! "$BASE" -m venv "$VENV"; then
  rm -rf "$VENV"
  echo "great-expectations: '$BASE -m venv' failed (on Debian: apt-get install python3-venv) — the agreement test will be skipped" >&2
  exit 0
fi
"$PY" -m pip install --quiet --disable-pip-version-check "great-expectations[postgresql]==$VERSION"
"$PY" -c "$check"
touch "$VENV/.complete"
echo "great-expectations: $VERSION ready"
