"""How the writer inserts captured wines: multi-row INSERT statements, their values converted column by column.

Going through `predictions.insert()` with a dict per wine cost about 40 us a wine in the entry process (SQLAlchemy
builds and processes each dict's parameters), while the writer's thread held the GIL: a flush of a second's wines
held the event loop back for tens of milliseconds, which showed in the capture's p99. Here a flush's batches are
merged column by column; a value that all the wines of a batch share is converted once for the batch, the others
one by one, each by the dialect's own bind processor (SQLite's text times and JSON text, psycopg's Json), so what
reaches the database is what SQLAlchemy would send. Floats need none: they come from float64 arrays.

Rows go ROWS_PER_STATEMENT at a time in one INSERT ... VALUES (...), (...): an executemany would have sqlite3 let go
of the GIL around each row's step and wait to take it back from the busy event loop, a hand-over per wine that cost
the loop more than the inserts themselves. A driver whose parameter style is neither positional form gets
SQLAlchemy's insert() with dicts.
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
REPEATED = {"outside_training_range"}  # JSON values that repeat (mostly []): each distinct one converted once


class Inserter:
    """Captured batches into the predictions table, for one dialect."""

    def __init__(self, dialect: Dialect) -> None:
        placeholder = PLACEHOLDERS.get(dialect.paramstyle)
        quote = dialect.identifier_preparer.quote
        self.head: str | None = None  # 'INSERT INTO predictions (...) VALUES ', None for SQLAlchemy's insert()
        self.process: dict[str, Callable[[Any], Any]] = {}
        self._statements: dict[int, str] = {}
        if placeholder is None:
            return  # SQLAlchemy's insert() converts the values itself
        self.head = f"INSERT INTO {quote(predictions.name)} ({', '.join(quote(n) for n in NAMES)}) VALUES "
        self.row = f"({', '.join([placeholder] * len(NAMES))})"
        for column in predictions.c:
            processor = column.type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None and not isinstance(column.type, Double):
                self.process[column.name] = processor

    def values(self, batches: Sequence[Columns]) -> np.ndarray:
        """The rows of batches made by `batch.columns`, as the driver takes them: an object array [rows, columns] in
        the table's column order (numpy flattens it for each INSERT in C: 0.9 ms a 1,000 wines of 1,000-wine batches,
        where tuples zipped row by row and chained cost 1.5)."""
        table = np.empty((sum(b.n for b in batches), len(NAMES)), dtype=object)
        if not batches:
            return table
        table[:, FEATURES_AT] = np.concatenate([b.features for b in batches])  # Python floats, in C
        for slot, name in enumerate(NAMES):
            if name in FEATURE_COLUMNS:
                continue
            process, column = self.process.get(name), []
            seen: dict[Any, Any] = {}
            for batch in batches:
                if name not in batch.each:
                    value = batch.shared[name]
                    column.extend([value if process is None else process(value)] * batch.n)
                elif process is None:
                    column.extend(batch.each[name])
                elif name in REPEATED:
                    for value in batch.each[name]:
                        key = tuple(value)
                        if key not in seen:
                            seen[key] = process(value)
                        column.append(seen[key])
                else:
                    column.extend(process(value) for value in batch.each[name])
            table[:, slot] = np.fromiter(column, dtype=object, count=len(column))  # a list value stays one value
        return table

    def _statement(self, rows: int) -> str:
        """One INSERT of that many rows (made once for each size)."""
        statement = self._statements.get(rows)
        if statement is None:
            statement = self._statements[rows] = f"{self.head}{', '.join([self.row] * rows)}"
        return statement

    def insert(self, connection: Connection, rows: np.ndarray) -> None:
        """Insert rows made by `values`, in the connection's transaction."""
        if not len(rows):
            return
        if self.head is not None:
            for start in range(0, len(rows), ROWS_PER_STATEMENT):
                part = rows[start : start + ROWS_PER_STATEMENT]
                connection.exec_driver_sql(self._statement(len(part)), tuple(part.ravel().tolist()))
        else:
            connection.execute(predictions.insert(), [dict(zip(NAMES, row, strict=True)) for row in rows.tolist()])
