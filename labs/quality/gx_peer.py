"""The lab's suite, run by Great Expectations 1.x on the same batches, for claim 7 (agreement).

Reads one JSON object on stdin:
  {"url": postgresql URL, "suite": [the lab's expectations, as in pipelines/quality/suite.ts],
   "batches": [{"table": a table holding exactly one batch, "batch_date": "YYYY-MM-DD"}]}
Writes one JSON object on stdout: {"gx_version": …, "results": {table: {expectation name: passed}}}.

Each of the lab's expectations maps to GX's own. GX's value expectations (between, in set, regex)
skip NULLs; the lab's `nulls: "fail"` is the same question as GX's value expectation AND
expect_column_values_to_not_be_null, so that is how it is asked. Foreign keys and the custom SQL
check are UnexpectedRowsExpectation queries (GX has no referential-integrity expectation).
"""
import datetime as dt
import json
import re
import sys

import great_expectations as gx
import great_expectations.expectations as gxe

# GX compares the type string Postgres reports, exactly (case aside): a parametrised type is its own
# string, so the lab's "numeric" family lists the precision its bronze table declares.
TYPE_LISTS = {
    "integer": ["BIGINT", "INTEGER", "SMALLINT"],
    "numeric": ["NUMERIC", "NUMERIC(14, 2)", "DECIMAL"],
    "text": ["TEXT", "VARCHAR"],
    "date": ["DATE"],
    "timestamp": ["TIMESTAMP", "TIMESTAMP WITHOUT TIME ZONE"],
}
IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")


def ident(name):
    if not IDENT.match(name):
        raise ValueError(f"not a plain identifier: {name!r}")
    return name


def custom_sql(e):
    def value(m):
        v = e["params"][m.group(1)]
        if not isinstance(v, (int, float)):
            raise ValueError(f"{e['name']}: only numeric parameters are supported here")
        return repr(v)

    condition = re.sub(r"\{(\w+)\}", value, e["sql"])
    # One row when the aggregate condition is false; none when it holds or has nothing to judge (NULL).
    return f"SELECT 1 AS failed FROM {{batch}} HAVING NOT ({condition})"


def expectations_for(e, batch_date):
    """The GX expectations whose conjunction asks the lab's expectation `e`."""
    k = e["kind"]
    col = e.get("column")
    not_null = [gxe.ExpectColumnValuesToNotBeNull(column=col)] if e.get("nulls") == "fail" else []
    if k == "column_exists":
        return [gxe.ExpectColumnToExist(column=c) for c in e["columns"]]
    if k == "column_type":
        return [gxe.ExpectColumnValuesToBeInTypeList(column=col, type_list=TYPE_LISTS[e["type"]])]
    if k == "not_null":
        return [gxe.ExpectColumnValuesToNotBeNull(column=col)]
    if k == "between":
        return [gxe.ExpectColumnValuesToBeBetween(column=col, min_value=e["min"], max_value=e["max"])] + not_null
    if k == "in_set":
        return [gxe.ExpectColumnValuesToBeInSet(column=col, value_set=list(e["values"]))] + not_null
    if k == "regex":
        return [gxe.ExpectColumnValuesToMatchRegex(column=col, regex=e["pattern"])] + not_null
    if k == "references":
        c, t, key = ident(col), ident(e["table"]), ident(e["key"])
        q = f"SELECT * FROM {{batch}} WHERE {c} IS NOT NULL AND {c} NOT IN (SELECT {key} FROM {t} WHERE {key} IS NOT NULL)"
        return [gxe.UnexpectedRowsExpectation(unexpected_rows_query=q)] + not_null
    if k == "unique":
        cols = e["columns"]
        if len(cols) == 1:
            return [gxe.ExpectColumnValuesToBeUnique(column=cols[0])]
        return [gxe.ExpectCompoundColumnsToBeUnique(column_list=list(cols))]
    if k == "completeness":
        return [gxe.ExpectColumnValuesToNotBeNull(column=col, mostly=e["min"])]
    if k == "row_count":
        return [gxe.ExpectTableRowCountToBeBetween(min_value=e["min"], max_value=e.get("max"))]
    if k == "freshness":
        cutoff = dt.datetime.fromisoformat(batch_date) + dt.timedelta(hours=e["hours"])
        return [gxe.ExpectColumnMaxToBeBetween(column=col, min_value=cutoff)]
    if k == "custom_sql":
        return [gxe.UnexpectedRowsExpectation(unexpected_rows_query=custom_sql(e))]
    raise ValueError(f"no GX mapping for kind {k}")


def main():
    job = json.load(sys.stdin)
    context = gx.get_context(mode="ephemeral")
    # SQLAlchemy 2 knows the scheme as postgresql://, not postgres://.
    url = re.sub(r"^postgres(ql)?://", "postgresql+psycopg2://", job["url"])
    source = context.data_sources.add_postgres(name="lab", connection_string=url)
    out = {}
    for b in job["batches"]:
        asset = source.add_table_asset(name=b["table"], table_name=ident(b["table"]))
        batch = asset.add_batch_definition_whole_table("whole").get_batch()
        results = {}
        for e in job["suite"]:
            verdicts = []
            for x in expectations_for(e, b["batch_date"]):
                r = batch.validate(x)
                # An expectation GX cannot evaluate (an exception inside, e.g. max over no rows) is not a pass.
                verdicts.append(bool(r.success) and not r.exception_info.get("raised_exception", False))
            results[e["name"]] = all(verdicts)
        out[b["table"]] = results
    json.dump({"gx_version": gx.__version__, "results": out}, sys.stdout)


if __name__ == "__main__":
    main()
