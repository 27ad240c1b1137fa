#!/usr/bin/env bash
# Great Expectations, the reference tool the quality lab's suite is compared with (claim 7 in
# tests/quality.test.ts, which skips with a reason when this is not installed), in its own
# virtualenv under the de-lab cache (~/.cache/de-lab/great-expectations-<version>). Run by .ci/run;
# a no-op when already installed. The [postgresql] extra brings SQLAlchemy and psycopg2: GX checks
# the lab's Postgres batches in place.
set -euo pipefail
. "$(dirname "$0")/../lib/venv.sh"
VERSION=1.24.1
ensure_venv great-expectations "great-expectations-$VERSION" \
  'import importlib.metadata as m, sys; import great_expectations, sqlalchemy, psycopg2; sys.exit(0 if m.version("great-expectations") == "'$VERSION'" else 1)' \
  "the quality lab's agreement test will be skipped" \
  "great-expectations[postgresql]==$VERSION"
