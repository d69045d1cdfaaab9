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
FEATURE_SLOTS = [NAMES.index(name) for name in FEATURE_COLUMNS]
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
        the table's column order (numpy fills and flattens it in C; tuples built row by row cost three times more)."""
        table = np.empty((sum(b.n for b in batches), len(NAMES)), dtype=object)
        if not batches:
            return table
        table[:, FEATURE_SLOTS] = np.concatenate([b.features for b in batches])  # Python floats, in C
        for slot, name in enumerate(NAMES):
            if name in FEATURE_COLUMNS:
                continue
            process, start = self.process.get(name), 0
            seen: dict[Any, Any] = {}
            for batch in batches:
                end = start + batch.n
                if name not in batch.each:
                    value = batch.shared[name]
                    table[start:end, slot] = _cell(value if process is None else process(value))
                elif process is None:
                    table[start:end, slot] = np.fromiter(batch.each[name], dtype=object, count=batch.n)
                elif name in REPEATED:
                    column = []
                    for value in batch.each[name]:
                        key = tuple(value)
                        if key not in seen:
                            seen[key] = process(value)
                        column.append(seen[key])
                    table[start:end, slot] = np.fromiter(column, dtype=object, count=batch.n)
                else:
                    table[start:end, slot] = np.fromiter(map(process, batch.each[name]), dtype=object, count=batch.n)
                start = end
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


def _cell(value: Any) -> np.ndarray:
    """One value as a 0-d object array, which numpy repeats down a column as it is (a list is not unpacked)."""
    cell = np.empty((), dtype=object)
    cell[()] = value
    return cell
