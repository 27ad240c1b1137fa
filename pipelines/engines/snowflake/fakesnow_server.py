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
   recorded. `--no-workarounds` starts the server without this patch (the known-limit test uses
   it to check the limit still exists in fakesnow).
"""

from __future__ import annotations

import argparse
import base64
import datetime as dt
import decimal
import json
from typing import Any

import pyarrow as pa
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import fakesnow.server as fs_server
import fakesnow.transforms as fs_transforms
import snowflake.connector.errors as sf_errors
from fakesnow.cursor import FakeSnowflakeCursor

QUERY_PATH = "/queries/v1/query-request"
# Snowflake's "SQL execution internal error"; fakesnow's unmapped exceptions answer with it here.
INTERNAL_ERROR = 603


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
    """Workaround 2: no `_fs_global` write for a CREATE TABLE without a comment (MERGE's temp table)."""
    extract = fs_transforms.extract_comment_on_table

    def extract_comment_if_any(expression: Any) -> Any:
        out = extract(expression)
        table_comment = out.args.get("table_comment")
        if table_comment is not None and table_comment[1] is None:
            del out.args["table_comment"]
        return out

    fs_transforms.extract_comment_on_table = extract_comment_if_any


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


def arrow_to_json_rowset(b64: str, rowtype: list[dict[str, Any]]) -> list[list[str | None]]:
    if not b64:
        return []
    table = pa.ipc.open_stream(base64.b64decode(b64)).read_all()
    columns = [table.column(i).to_pylist() for i in range(table.num_columns)]
    return [
        [to_json_text(columns[c][r], rowtype[c]) for c in range(len(columns))] for r in range(table.num_rows)
    ]


async def query_request_json(request: Request) -> Response:
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
    parser.add_argument("--no-workarounds", action="store_true", help="do not patch MERGE inside a transaction")
    args = parser.parse_args()
    fail_fast()
    if not args.no_workarounds:
        merge_in_transaction()
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
