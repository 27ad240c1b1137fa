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
and the driver then never calls back). Nothing else is changed. Stops on SIGINT/SIGTERM (uvicorn's handlers).
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

QUERY_PATH = "/queries/v1/query-request"


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
    args = parser.parse_args()
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level)
