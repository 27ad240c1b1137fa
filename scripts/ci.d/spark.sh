#!/usr/bin/env bash
# Apache Spark for the spark engine (pipelines/engines/spark/provision.ts): PyPI's pyspark wheel
# ships Spark's jars (spark-core, spark-sql, spark-connect: the Spark Connect server and its .proto
# files), installed into its own virtualenv under the de-lab cache (~/.cache/de-lab/pyspark-<version>)
# so neither CI nor a user's Python gets packages it did not ask for. Nothing of pyspark's Python
# is used: the JVMs run from its jars/ folder. Run by .ci/run and, on first use, by the provisioner;
# a no-op when already installed. ~520 MB, once.
set -euo pipefail
VERSION=4.3.0
CACHE="${DE_LAB_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/de-lab}"
VENV="$CACHE/pyspark-$VERSION"
PY="$VENV/bin/python"
check='import importlib.metadata as m, importlib.util as u, pathlib, sys; s = u.find_spec("pyspark"); sys.exit(0 if s and m.version("pyspark") == "'$VERSION'" and list((pathlib.Path(s.origin).parent / "jars").glob("spark-connect_*.jar")) else 1)'
if [ -f "$VENV/.complete" ] && "$PY" -c "$check" 2>/dev/null; then
  exit 0
fi
BASE="${SPARK_BASE_PYTHON:-python3}"
if ! command -v "$BASE" >/dev/null; then
  echo "spark: no python3 on PATH — the spark engine takes Spark's jars from PyPI's pyspark (or set SPARK_REMOTE for a cluster)" >&2
  exit 0
fi
echo "spark: installing pyspark==$VERSION (Spark $VERSION jars) into $VENV (once, ~520 MB)"
# Complete only once the marker exists: a killed install is redone, never half-used.
rm -rf "$VENV"
if ! "$BASE" -m venv "$VENV"; then
  rm -rf "$VENV"
  echo "spark: '$BASE -m venv' failed (on Debian: apt-get install python3-venv)" >&2
  exit 0
fi
"$PY" -m pip install --quiet --disable-pip-version-check --no-compile "pyspark==$VERSION"
"$PY" -c "$check"
touch "$VENV/.complete"
echo "spark: $VERSION ready"
