/**
 * Exercise: write the expectation compiler for three kinds — the SQL an interviewer asks for when
 * they ask "how would you check this in the warehouse?". The lab compiles every other kind with
 * the reference; yours are judged by the same claim checks (npm run check -- quality).
 *
 * Row level (not_null, between) returns a pair of boolean SQL expressions over the batch row:
 *   failed   TRUE when the row fails — never NULL: a NULL would count neither as a pass nor as a
 *            fail, and the gate routes rows with `reasons = ''` / `reasons <> ''`
 *   isNull   TRUE when the checked value is NULL (NULLs are counted as their own outcome)
 * `between` has `e.nulls`: 'fail' (required column: a NULL fails) or 'pass'.
 *
 * Batch level (unique) returns aggregates, computed in the suite's ONE scan of the batch, and a
 * judge that turns their values into a verdict. Rows with a NULL in the key are not compared.
 *
 * Use sql.col(name) for a column of the batch row (b."amount"), sql.param(value, 'numeric') for a
 * bound value — never a value concatenated into SQL.
 */
import type { CompiledExpectation, SqlBuilder } from '../../../pipelines/quality/compile.ts';
import type { Expectation } from '../../../pipelines/quality/suite.ts';

export function compileExpectation(e: Expectation, sql: SqlBuilder): CompiledExpectation {
  switch (e.kind) {
    case 'not_null':
      // TODO 1: failed and isNull for sql.col(e.column).
      break;
    case 'between':
      // TODO 2: the value lies in [e.min, e.max]; a NULL is its own outcome, failing when e.nulls === 'fail'.
      //         NOT (x BETWEEN a AND b) is NULL for a NULL x — that is the trap.
      break;
    case 'unique':
      // TODO 3: aggregates that reveal duplicate e.columns tuples (one or several columns), and a judge.
      break;
    default:
      break;
  }
  void sql;
  throw new Error(`TODO: compileExpectation(${e.kind} ${e.name}) is not written yet`);
}
