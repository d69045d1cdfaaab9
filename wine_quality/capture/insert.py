"""How the writer inserts captured wines: multi-row INSERT statements, their values converted column by column.

Going through `predictions.insert()` with a dict per wine cost about 40 us a wine in the entry process (SQLAlchemy
builds and processes each dict's parameters), while the writer's thread held the GIL: a flush of a second's wines
held the event loop back for tens of milliseconds, which showed in the capture's p99. Here a flush's batches are
merged column by column; a value that all the wines of a batch share is converted once for the batch (once for
the flush, when many single wines' batches share it), the others one by one, each by the dialect's own bind
processor (SQLite's text times and JSON text, psycopg's Json), so what reaches the database is what SQLAlchemy would
send. Floats need none: they come from float64 arrays.

Rows go ROWS_PER_STATEMENT at a time in one INSERT ... VALUES (...), (...): an executemany would have sqlite3 let go
of the GIL around each row's step and wait to take it back from the busy event loop, a hand-over per wine that cost
the loop more than the inserts themselves. On SQLite, a batch of SHARED_ONCE_ROWS wines or more (a 1,000-wine
request) is inserted on its own, with the values its wines share bound once per statement (INSERT ... SELECT ?, ...,
column1, ... FROM (VALUES ...)): about 16 parameters a wine instead of 30 (a value every wine of it shares, like
`[]` out of range, is shared too). The writer's CPU per wine of 1,000-wine batches went from 7.9-8.4 to 4.8-4.9 us
(`python -m benchmarks.capture_flush --wines 4000 --batch 1000`), the rows stored the same (tests/unit/
test_capture_writer.py). PostgreSQL keeps the one form: there a SELECT list's parameters are not typed by the
INSERT's columns, and would need casts. A driver whose parameter style is neither positional form gets SQLAlchemy's
insert() with dicts.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from sqlalchemy import Connection, Dialect, Double

from wine_quality.capture.batch import FEATURE_COLUMNS, Columns
from wine_quality.capture.tables import predictions

NAMES: tuple[str, ...] = tuple(c.name for c in predictions.c)
FEATURES_AT = slice(NAMES.index(FEATURE_COLUMNS[0]), NAMES.index(FEATURE_COLUMNS[-1]) + 1)  # side by side, in order
assert NAMES[FEATURES_AT] == FEATURE_COLUMNS
PLACEHOLDERS = {"qmark": "?", "format": "%s", "pyformat": "%s"}
# Rows an INSERT carries: 300 x 30 columns stays far below SQLite's 32,766 and PostgreSQL's 65,535 parameters.
ROWS_PER_STATEMENT = 300
SHARED_ONCE_ROWS = 64  # a batch this large gets statements of its own, its shared values bound once (SQLite)
REPEATED = {"outside_training_range"}  # JSON values that repeat (mostly []): each distinct one converted once


def _converted(process: Callable[[Any], Any], value: Any, seen: dict[Any, Any]) -> Any:
    """process(value), converted once for each distinct value (a list's key is its tuple)."""
    key = tuple(value) if isinstance(value, list) else value
    try:
        return seen[key]
    except KeyError:
        seen[key] = converted = process(value)
        return converted
    except TypeError:  # unhashable (a mapping): converted on its own
        return process(value)


class Inserter:
    """Captured batches into the predictions table, for one dialect."""

    def __init__(self, dialect: Dialect) -> None:
        placeholder = PLACEHOLDERS.get(dialect.paramstyle)
        self.quote = dialect.identifier_preparer.quote
        self.positional = placeholder is not None  # else SQLAlchemy's insert() converts the values itself
        self.shared_once = self.positional and dialect.name == "sqlite"
        self.placeholder = placeholder or "?"
        self.process: dict[str, Callable[[Any], Any]] = {}
        self._statements: dict[tuple[tuple[str, ...], tuple[str, ...], int], str] = {}
        for column in predictions.c if self.positional else ():
            processor = column.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None and not isinstance(column.type, Double):
                self.process[column.name] = processor

    def write(self, connection: Connection, batches: Sequence[Columns]) -> None:
        """Insert the rows of batches made by `batch.columns`, in the connection's transaction."""
        if not self.shared_once:
            self.insert(connection, self.values(batches))
            return
        small = [b for b in batches if b.n < SHARED_ONCE_ROWS]
        self.insert(connection, self.values(small))
        for batch in batches:
            if batch.n >= SHARED_ONCE_ROWS:
                self._insert_shared_once(connection, batch)

    def values(self, batches: Sequence[Columns], names: tuple[str, ...] = NAMES) -> np.ndarray:
        """The rows of batches made by `batch.columns`, as the driver takes them: an object array [rows, names] (by
        default every column, in the table's order; numpy flattens it for each INSERT in C: 0.9 ms a 1,000 wines of
        1,000-wine batches, where tuples zipped row by row and chained cost 1.5)."""
        sizes = [b.n for b in batches]
        table = np.empty((sum(sizes), len(names)), dtype=object)
        if not batches:
            return table
        first = names.index(FEATURE_COLUMNS[0])  # the measurements stay side by side in any names of the table's order
        table[:, first : first + len(FEATURE_COLUMNS)] = np.concatenate([b.features for b in batches])  # in C
        for slot, name in enumerate(names):
            if name in FEATURE_COLUMNS:
                continue
            process, column = self.process.get(name), []
            seen: dict[Any, Any] = {}  # each distinct value converted once (route, model, `[]` out of range, ...)
            for batch, n in zip(batches, sizes, strict=True):
                values = batch.each.get(name)
                if values is None:  # one value for the batch's wines: for single wines, nearly every column
                    value = batch.shared[name]
                    bound = value if process is None else _converted(process, value, seen)
                    if n == 1:
                        column.append(bound)
                    else:
                        column.extend([bound] * n)
                elif process is None:
                    column.extend(values)
                elif name in REPEATED:
                    for value in values:
                        key = tuple(value)
                        if key not in seen:
                            seen[key] = process(value)
                        column.append(seen[key])
                else:
                    column.extend(process(value) for value in values)
            table[:, slot] = np.fromiter(column, dtype=object, count=len(column))  # a list value stays one value
        return table

    def insert(self, connection: Connection, rows: np.ndarray) -> None:
        """Insert rows made by `values` (every column), in the connection's transaction."""
        if not len(rows):
            return
        if not self.positional:
            connection.execute(predictions.insert(), [dict(zip(NAMES, row, strict=True)) for row in rows.tolist()])
            return
        self._execute(connection, (), (), NAMES, rows)

    def _insert_shared_once(self, connection: Connection, batch: Columns) -> None:
        """One large batch, its shared values bound once per statement and the others per wine."""
        shared = dict(batch.shared)
        for name in REPEATED & batch.each.keys():  # one value for every wine (mostly []): shared too
            values = batch.each[name]
            if all(v == values[0] for v in values):
                shared[name] = values[0]
        once = tuple(n for n in NAMES if n in shared)
        each = tuple(n for n in NAMES if n not in shared)
        bound = tuple(self._bound(name, shared[name]) for name in once)
        rows = self.values([Columns({}, {n: batch.each[n] for n in each if n in batch.each}, batch.features)], each)
        self._execute(connection, once, bound, each, rows)

    def _bound(self, name: str, value: Any) -> Any:
        """A value as the driver takes it for that column (the dialect's bind processor, where it has one)."""
        process = self.process.get(name)
        return value if process is None else process(value)

    def _execute(
        self,
        connection: Connection,
        once: tuple[str, ...],
        bound: tuple[Any, ...],
        each: tuple[str, ...],
        rows: np.ndarray,
    ) -> None:
        """rows ([n, len(each)], from `values`) in INSERTs of ROWS_PER_STATEMENT, each with the `once` values bound."""
        for start in range(0, len(rows), ROWS_PER_STATEMENT):
            part = rows[start : start + ROWS_PER_STATEMENT]
            connection.exec_driver_sql(self._statement(once, each, len(part)), bound + tuple(part.ravel().tolist()))

    def _statement(self, once: tuple[str, ...], each: tuple[str, ...], rows: int) -> str:
        """One INSERT of that many rows of `each` columns, with `once` columns bound once (made once for each)."""
        key = (once, each, rows)
        statement = self._statements.get(key)
        if statement is None:
            mark, quote = self.placeholder, self.quote
            row = f"({', '.join([mark] * len(each))})"
            values = ", ".join([row] * rows)
            into = f"INSERT INTO {quote(predictions.name)} ({', '.join(quote(n) for n in once + each)}) "
            if once:
                picked = ", ".join([mark] * len(once) + [f"column{i}" for i in range(1, len(each) + 1)])
                statement = f"{into}SELECT {picked} FROM (VALUES {values})"
            else:
                statement = f"{into}VALUES {values}"
            self._statements[key] = statement
        return statement
