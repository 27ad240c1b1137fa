"""fakesnow's HTTP server, answering result sets the way Snowflake answers the Node.js driver.

    python3 fakesnow_server.py --host 127.0.0.1 --port 40123

Why this file exists: Snowflake picks the result encoding per client. It sends the Python, JDBC
and Go drivers Apache Arrow (`rowsetBase64`), and the Node.js driver (`snowflake-sdk`), which has
no Arrow reader, JSON (`rowset`: a list of rows of strings). fakesnow's server was written for
the Python connector and always answers queries in Arrow, so `snowflake-sdk` fails on every
SELECT ("Cannot read properties of undefined (reading 'length')" while building the result,
then "Request to Snowflake failed." on its retry). See README "Snowflake engine", known limits.

This launcher runs fakesnow's own Starlette routes unchanged (every statement still runs on
fakesnow's engine) and only re-encodes an Arrow result as Snowflake's JSON rowset:
  FIXED  -> decimal text ("42", "12.50")      REAL    -> float text
  TEXT   -> text                               BOOLEAN -> "1" / "0"
  DATE   -> days since 1970-01-01 ("19723")    TIME    -> seconds.fraction
  TIMESTAMP_NTZ/LTZ -> epoch seconds with `scale` fraction digits ("1704067200.123000000")
  NULL   -> null
and adds `returned` (the inline row count snowflake-sdk reads; fakesnow's DML answers omit it,
and the driver then never calls back). Stops on SIGINT/SIGTERM (uvicorn's handlers).

Two runtime patches of fakesnow's behaviour (README "Snowflake engine", emulator workarounds),
applied in this process only; fakesnow's installed code is not modified:

1. Fail fast. fakesnow answers an exception it does not map (a DuckDB error inside a statement)
   with HTTP 500, which snowflake-sdk retries with back-off for minutes before "Request to
   Snowflake failed.". Here such an exception becomes a SQL error answer (Snowflake's generic
   000603 "SQL execution internal error", the original error text kept), so the driver fails
   that one statement at once with the real message.
2. MERGE inside BEGIN … COMMIT. fakesnow runs a MERGE as CREATE OR REPLACE TEMPORARY TABLE
   merge_candidates AS … plus DELETE/UPDATE/INSERT. Its comment extraction
   (transforms.extract_comment_on_table) tags every CREATE TABLE that has any property
   (TEMPORARY is one) with a table comment — None when there is none — and the cursor then
   records it with an INSERT into the `_fs_global` database. Inside an explicit transaction that
   has already written to the user's database, DuckDB refuses a second attached database: "a
   single transaction can only write to a single attached database". The patch drops the
   comment when it is None (no comment to record), so the MERGE (and CREATE TEMPORARY TABLE)
   write only to the user's database and run inside the transaction; a real COMMENT is still
   recorded. Likewise a CREATE TEMPORARY TABLE with VARCHAR columns records the columns' text
   lengths in `_fs_global` (for information_schema's character_maximum_length); for temporary
   tables that record is skipped, so a temporary work table (the cdc apply's stage) can be
   created inside the transaction.
3. MERGE with bind parameters in its WHEN clauses. fakesnow splits a MERGE into several DuckDB
   statements (the candidates table, one UPDATE/DELETE/INSERT per WHEN, the counts) and hands
   the statement's whole bind list to every part that has a placeholder, so a part using one of
   three binds fails: "Parameter argument/count mismatch, identifiers of the excess parameters".
   The patch numbers the MERGE's `?` placeholders (in text order) before the split and gives
   each part exactly the values of the placeholders it kept, as DuckDB `$n` parameters.
4. MERGE whose WHEN clauses use source columns inside expressions. The MERGE's candidates table
   carries only the source columns of the ON clause and those used bare in SET/VALUES, so
   `SET is_deleted = (s.action = 'delete')` or `email = CASE WHEN s.action … END` fails with
   `Table "S" does not have a column named "ACTION"`. The patch adds every source column the
   WHEN clauses reference to the candidates table.
5. Speed (no change in results): fakesnow parses every statement text three times (the server,
   the cursor, the result DESCRIBE) and runs ~50 sqlglot transforms over it, ~0.5 s for a wide
   fingerprint query, most of the scd2 lab's time on the emulator. Parse results are cached by
   exact text (a copy is handed out), and a SELECT without binds is transformed once per text
   and current database/schema (not RESULT_SCAN / LAST_QUERY_ID, which depend on history).
6. Sessions. A client killed inside BEGIN … COMMIT never ends its transaction; on Snowflake it
   stays open ("detached"), holding its locks, until someone runs SYSTEM$ABORT_SESSION (or the
   session expires hours later). fakesnow keeps such a session's DuckDB connection and its open
   transaction for the server's lifetime, so the next writer of the same rows fails with
   "Conflict on tuple deletion". fakesnow has neither CURRENT_SESSION() nor SYSTEM$ABORT_SESSION;
   this patch answers both the way Snowflake does: every session gets a numeric id, and aborting
   one rolls back its open transaction, closes its connection and forgets its token (its client
   must log in again). The cdc apply uses them to clear a killed predecessor's transaction.
`--no-workarounds` starts the server without patches 2–6 (the known-limit tests use it to
check the limits still exist in fakesnow).
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import decimal
import importlib
import json
from typing import Any

import pyarrow as pa
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import fakesnow.server as fs_server
import gzip
import re
from sqlglot import exp
import fakesnow.transforms as fs_transforms
import snowflake.connector.errors as sf_errors
from fakesnow.cursor import FakeSnowflakeCursor

QUERY_PATH = "/queries/v1/query-request"
# Snowflake's "SQL execution internal error"; fakesnow's unmapped exceptions answer with it here.
INTERNAL_ERROR = 603
SESSIONS_ENABLED = False


def fail_fast() -> None:
    """Workaround 1: an unmapped exception in a statement is a SQL error, not an HTTP 500 the driver retries."""
    execute = FakeSnowflakeCursor.execute

    def execute_or_sql_error(self: FakeSnowflakeCursor, *args: Any, **kwargs: Any) -> FakeSnowflakeCursor:
        try:
            return execute(self, *args, **kwargs)
        except sf_errors.Error:
            raise
        except Exception as e:  # noqa: BLE001 - every other exception is reported, once, as the statement's error
            raise sf_errors.ProgrammingError(
                msg=f"SQL execution internal error: {type(e).__name__}: {e}", errno=INTERNAL_ERROR, sqlstate="XX000"
            ) from e

    FakeSnowflakeCursor.execute = execute_or_sql_error  # type: ignore[method-assign]


def merge_in_transaction() -> None:
    """Workaround 2: no `_fs_global` write for a CREATE TABLE without a comment (MERGE's temp table), nor for a temporary table's text lengths."""
    extract = fs_transforms.extract_comment_on_table

    def extract_comment_if_any(expression: Any) -> Any:
        out = extract(expression)
        table_comment = out.args.get("table_comment")
        if table_comment is not None and table_comment[1] is None:
            del out.args["table_comment"]
        return out

    fs_transforms.extract_comment_on_table = extract_comment_if_any

    extract_lengths = fs_transforms.extract_text_length

    def extract_text_length_unless_temporary(expression: Any) -> Any:
        out = extract_lengths(expression)
        if isinstance(out, exp.Create) and out.find(exp.TemporaryProperty) and "text_lengths" in out.args:
            del out.args["text_lengths"]
        return out

    fs_transforms.extract_text_length = extract_text_length_unless_temporary


def to_json_text(value: Any, column: dict[str, Any]) -> str | None:
    if value is None:
        return None
    sf_type = str(column.get("type", "")).lower()
    if sf_type == "boolean":
        return "1" if value else "0"
    if sf_type == "date":
        if isinstance(value, dt.date):
            return str((value - dt.date(1970, 1, 1)).days)
        return str(value)
    if sf_type.startswith("timestamp") or sf_type == "time":
        scale = int(column.get("scale") or 9)
        if isinstance(value, dict):  # fakesnow's Snowflake-Arrow struct {epoch, fraction[, timezone]}
            if value.get("epoch") is None:
                return None
            epoch, nanos = int(value["epoch"]), int(value["fraction"])
        elif isinstance(value, int):  # TIME: nanoseconds since midnight
            epoch, nanos = divmod(value, 1_000_000_000)
        else:
            return str(value)
        frac = str(nanos).rjust(9, "0")[:scale]
        return f"{epoch}.{frac}" if scale > 0 else str(epoch)
    if isinstance(value, decimal.Decimal):
        return format(value, "f")
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (bytes, bytearray)):
        return value.hex()
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


BIND_MARK = "__DE_LAB_BIND"


def merge_binds() -> None:
    """Workaround 3: each part of a split MERGE gets the bind values of its own placeholders."""
    explode = FakeSnowflakeCursor._transform_explode
    transform = FakeSnowflakeCursor._transform
    execute_part = FakeSnowflakeCursor._execute

    def explode_numbered(self: FakeSnowflakeCursor, expression: Any) -> Any:
        if isinstance(expression, exp.Merge):
            placeholders = list(expression.find_all(exp.Placeholder, bfs=False))
            if placeholders and all(p.this is None for p in placeholders):
                for i, p in enumerate(placeholders, 1):
                    p.replace(exp.Anonymous(this=BIND_MARK, expressions=[exp.Literal.number(i)]))
                order = [int(n) for n in re.findall(BIND_MARK + r"\((\d+)\)", expression.sql(dialect="snowflake"))]
                if order != list(range(1, len(placeholders) + 1)):
                    raise sf_errors.ProgrammingError(
                        msg="de-lab fakesnow launcher: could not map the MERGE's bind parameters to their placeholders",
                        errno=INTERNAL_ERROR,
                        sqlstate="XX000",
                    )
        return explode(self, expression)

    def transform_binds(self: FakeSnowflakeCursor, expression: Any, params: Any) -> Any:
        out = transform(self, expression, params)
        marks = [a for a in out.find_all(exp.Anonymous) if str(a.this).upper() == BIND_MARK]
        if marks:
            used = sorted({int(a.expressions[0].name) for a in marks})
            renumber = {k: i for i, k in enumerate(used, 1)}
            for a in marks:
                a.replace(exp.Placeholder(this=str(renumber[int(a.expressions[0].name)])))
            out.args["de_lab_binds"] = used
        return out

    def execute_part_binds(self: FakeSnowflakeCursor, transformed: Any, params: Any = None) -> Any:
        used = transformed.args.get("de_lab_binds")
        if used and isinstance(params, (list, tuple)):
            params = [params[k - 1] for k in used]
        return execute_part(self, transformed, params)

    FakeSnowflakeCursor._transform_explode = explode_numbered  # type: ignore[method-assign]
    FakeSnowflakeCursor._transform = transform_binds  # type: ignore[method-assign]
    FakeSnowflakeCursor._execute = execute_part_binds  # type: ignore[method-assign]

def merge_source_columns() -> None:
    """Workaround 4: the MERGE candidates table carries every source column the WHEN clauses use."""
    # The module, not the `merge` function fakesnow.transforms re-exports under the same name.
    fs_merge = importlib.import_module("fakesnow.transforms.merge")

    create_candidates = fs_merge._create_merge_candidates

    def create_candidates_all_columns(merge_expr: exp.Merge) -> Any:
        out = create_candidates(merge_expr)
        source = merge_expr.args.get("using")
        source_name = source.alias_or_name if source is not None else None
        select = out.find(exp.Select)
        if not source_name or select is None:
            return out
        have = {e.sql() for e in select.expressions}
        needed: dict[str, exp.Column] = {}
        for when in merge_expr.args.get("whens") or []:
            for col in when.find_all(exp.Column):
                if col.table and col.table.upper() == source_name.upper() and col.sql() not in have:
                    needed.setdefault(col.sql(), col)
        if needed:
            *columns, merge_op = select.expressions
            select.set("expressions", [*columns, *(c.copy() for c in needed.values()), merge_op])
        return out

    fs_merge._create_merge_candidates = create_candidates_all_columns

def cached_parsing(limit: int = 2048) -> None:
    """Workaround 5: parse each statement text once; transform each parameterless SELECT once."""
    from collections import OrderedDict

    import sqlglot

    import fakesnow.cursor as fs_cursor

    def lru(parse: Any) -> Any:
        cache: OrderedDict[Any, Any] = OrderedDict()

        def cached(key: Any) -> Any:
            tree = cache.get(key)
            if tree is None:
                tree = parse(key)  # a syntax error raises and is not cached
                cache[key] = tree
                if len(cache) > limit:
                    cache.popitem(last=False)
            else:
                cache.move_to_end(key)
            out = tree.copy()
            out.meta["de_lab_text"] = key
            return out

        return cached

    parse_snowflake = lru(fs_cursor.parse_one)
    fs_cursor.parse_one = parse_snowflake
    fs_server.parse_one = parse_snowflake

    parse_duckdb = lru(lambda text: sqlglot.parse_one(text, read="duckdb"))

    def describe_last_sql(self: FakeSnowflakeCursor) -> list:
        with self._conn.cursor() as cur:
            cur._execute(parse_duckdb(f"DESCRIBE {self._last_sql}"), self._last_params)
            return cur.fetchall()

    transform = FakeSnowflakeCursor._transform
    transformed_selects: OrderedDict[Any, Any] = OrderedDict()

    def transform_cached(self: FakeSnowflakeCursor, expression: Any, params: Any) -> Any:
        text = expression.meta.get("de_lab_text")
        if (
            params
            or not text
            or not isinstance(expression, exp.Select)
            or expression.find(exp.Placeholder)
            or re.search(r"RESULT_SCAN|LAST_QUERY_ID", text, re.IGNORECASE)
        ):
            return transform(self, expression, params)
        key = (text, self._conn.database, self._conn.schema)
        done = transformed_selects.get(key)
        if done is None:
            done = transform(self, expression, params)
            transformed_selects[key] = done.copy()
            if len(transformed_selects) > limit:
                transformed_selects.popitem(last=False)
            return done
        transformed_selects.move_to_end(key)
        return done.copy()

    FakeSnowflakeCursor._describe_last_sql = describe_last_sql  # type: ignore[method-assign]
    FakeSnowflakeCursor._transform = transform_cached  # type: ignore[method-assign]

def arrow_to_json_rowset(b64: str, rowtype: list[dict[str, Any]]) -> list[list[str | None]]:
    if not b64:
        return []
    table = pa.ipc.open_stream(base64.b64decode(b64)).read_all()
    columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
    return [
        [to_json_text(columns[c][r], rowtype[c]) for c in range(len(columns))] for r in range(table.num_rows)
    ]


SESSION_IDS: dict[str, int] = {}
CURRENT_SESSION = re.compile(r"^\s*SELECT\s+CURRENT_SESSION\(\s*\)(\s+AS\s+(\"[^\"]+\"|\w+))?\s*;?\s*$", re.I)
ABORT_SESSION = re.compile(r"^\s*SELECT\s+SYSTEM\$ABORT_SESSION\(\s*(\d+)\s*\)(\s+AS\s+(\"[^\"]+\"|\w+))?\s*;?\s*$", re.I)


def session_id(token: str) -> int:
    if token not in SESSION_IDS:
        SESSION_IDS[token] = len(SESSION_IDS) + 1
    return SESSION_IDS[token]


async def session_functions(request: Request) -> None:
    """Workaround 6: CURRENT_SESSION() and SYSTEM$ABORT_SESSION(id), answered as a one-row SELECT of their text."""
    raw = await request.body()
    gz = request.headers.get("Content-Encoding") == "gzip"
    try:
        body = json.loads(gzip.decompress(raw) if gz else raw)
        sql = body["sqlText"]
        token = fs_server.to_token(request)
    except Exception:  # noqa: BLE001 - not ours to judge: fakesnow answers it
        return
    if token not in fs_server.sessions:
        return
    alias = None
    if m := CURRENT_SESSION.match(sql):
        value, alias = str(session_id(token)), m.group(2)
    elif m := ABORT_SESSION.match(sql):
        target = int(m.group(1))
        victim = next((t for t, i in SESSION_IDS.items() if i == target and t in fs_server.sessions), None)
        if victim is None:
            value = f"Session {target} not found or already ended."
        else:
            conn = fs_server.sessions.pop(victim)
            try:
                conn._duck_conn.rollback()
            except Exception:  # noqa: BLE001 - no transaction open: nothing to roll back
                pass
            conn.close()
            value = f"Session {target} successfully aborted."
        alias = m.group(3)
    else:
        return
    quoted = "'" + value.replace("'", "''") + "'"
    body["sqlText"] = f"SELECT {quoted} AS {alias or 'RESULT'}"
    out = json.dumps(body).encode()
    request._body = gzip.compress(out) if gz else out  # Starlette's cached body: fakesnow reads this one


async def query_request_json(request: Request) -> Response:
    if SESSIONS_ENABLED:
        await session_functions(request)
    response = await fs_server.query_request(request)
    try:
        body = json.loads(response.body)
    except ValueError:
        return response
    if response.status_code >= 500 and isinstance(body, dict):
        # Whatever still escapes as a server error (workaround 1 covers statements): answer it as
        # a failed statement, which snowflake-sdk reports at once instead of retrying for minutes.
        return JSONResponse(
            {
                "data": {"errorCode": f"{INTERNAL_ERROR:06d}", "sqlState": "XX000"},
                "code": f"{INTERNAL_ERROR:06d}",
                "message": f"SQL execution internal error: {body.get('message')}",
                "success": False,
            }
        )
    data = body.get("data") if isinstance(body, dict) else None
    if isinstance(data, dict) and data.get("queryResultFormat") == "arrow":
        rowset = arrow_to_json_rowset(data.pop("rowsetBase64", "") or "", data.get("rowtype") or [])
        data["queryResultFormat"] = "json"
        data["rowset"] = rowset
        data["total"] = len(rowset)
    if isinstance(data, dict) and isinstance(data.get("rowset"), list) and "returned" not in data:
        # snowflake-sdk reads the inline row count from `returned`; without it, it never completes.
        data["returned"] = len(data["rowset"])
    return JSONResponse(body, status_code=response.status_code)


routes = [
    Route(QUERY_PATH, query_request_json, methods=["POST"]) if getattr(r, "path", None) == QUERY_PATH else r
    for r in fs_server.routes
]
app = Starlette(routes=routes)

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--log-level", default="warning")
    parser.add_argument("--no-workarounds", action="store_true", help="fakesnow as installed: only the fail-fast answer (no patches 2-6)")
    args = parser.parse_args()
    fail_fast()
    if not args.no_workarounds:
        merge_in_transaction()
        merge_binds()
        merge_source_columns()
        cached_parsing()
        SESSIONS_ENABLED = True
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
