#!/usr/bin/env bash
# Apache Spark for the spark engine (pipelines/engines/spark/provision.ts): PyPI's pyspark wheel
# ships Spark's jars (spark-core, spark-sql, spark-connect: the Spark Connect server and its .proto
# files), in its own virtualenv under the de-lab cache (~/.cache/de-lab/pyspark-<version>). Nothing
# of pyspark's Python is used: the JVMs run from its jars/ folder. Run by .ci/run and, on first use
# of --engine spark, by the provisioner; a no-op when already installed. ~520 MB, once.
# 4.2.1, not 4.3.0: Delta Lake 4.4.0 (scripts/delta/pom.xml) is built against Spark 4.2.
# (Not by `npm run test:spark`: without it tests/spark.test.ts skips with a line saying so, outside CI.)
set -euo pipefail
. "$(dirname "$0")/../lib/venv.sh"
VERSION=4.2.1
ensure_venv spark "pyspark-$VERSION" \
  'import importlib.metadata as m, importlib.util as u, pathlib, sys; s = u.find_spec("pyspark"); sys.exit(0 if s and m.version("pyspark") == "'$VERSION'" and list((pathlib.Path(s.origin).parent / "jars").glob("spark-connect_*.jar")) else 1)' \
  'the spark engine takes Spark'"'"'s jars from PyPI'"'"'s pyspark (or set SPARK_REMOTE for a cluster)' \
  --no-compile "pyspark==$VERSION"
