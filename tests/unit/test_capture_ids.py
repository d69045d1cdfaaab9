"""Ids of captured wines: version-7 UUIDs, increasing within a process, unique across processes."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ProcessPoolExecutor

import pytest

from wine_quality.capture import ids
from wine_quality.capture.ids import id_time, new_id, new_ids


def test_an_id_is_a_version_7_uuid_that_tells_when_it_was_made() -> None:
    """It is a UUID of version 7 and RFC variant, in canonical text, whose time is now."""
    before = time.time()
    text = new_id()
    parsed = uuid.UUID(text)
    assert (parsed.version, parsed.variant, str(parsed)) == (7, uuid.RFC_4122, text)
    made = id_time(text)
    assert made is not None and before - 0.001 <= made <= time.time()


def test_ids_of_one_process_strictly_increase_as_text() -> None:
    """Single and batched ids, made back to back many per millisecond, sort in the order they were made."""
    ids = [new_id() for _ in range(5000)] + new_ids(5000) + [new_id() for _ in range(5000)]
    assert ids == sorted(ids) and len(set(ids)) == len(ids)


def test_many_ids_at_once_are_spelled_as_one_at_a_time(monkeypatch: pytest.MonkeyPatch) -> None:
    """A request's ids made with arrays (many wines) have the bits that the one-by-one path gives the same times and
    randomness: version 7, RFC variant, the time and the random bits where RFC 9562 puts them."""
    noise = bytes(range(256)) * 4  # 128 ids' random bits, fixed
    monkeypatch.setattr(ids.os, "urandom", lambda k: noise[:k])
    monkeypatch.setattr(ids.time, "time_ns", lambda: 1_796_284_400_123_456_789)
    monkeypatch.setattr(ids, "_last", 0)
    at_once = new_ids(128)
    monkeypatch.setattr(ids, "_last", 0)
    monkeypatch.setattr(ids, "_FEW", 128)
    assert at_once == new_ids(128)
    parsed = [uuid.UUID(text) for text in at_once]
    assert {(p.version, p.variant) for p in parsed} == {(7, uuid.RFC_4122)}
    assert {id_time(text) for text in at_once} == {1_796_284_400.123}


def _ids(n: int) -> list[str]:
    return new_ids(n)


def test_ids_of_several_processes_do_not_clash() -> None:
    """Four processes making ids at the same time (the same milliseconds) make no id twice."""
    with ProcessPoolExecutor(4) as pool:
        made = list(pool.map(_ids, [50_000] * 4))
    everything = [i for part in made for i in part]
    assert len(set(everything)) == len(everything)
    assert all(part == sorted(part) for part in made)


def test_id_time_is_none_for_other_text() -> None:
    """A version-4 UUID, a short string or hex garbage has no time."""
    assert id_time(str(uuid.uuid4())) is None
    assert id_time("x") is None
    assert id_time("zzzzzzzz-zzzz-7zzz-zzzz-zzzzzzzzzzzz") is None
