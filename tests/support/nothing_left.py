"""The "nothing left" check: search every table and every Redis key for a person.

After an erasure, an address (and the first name that went with it) must appear
nowhere: not in any text, JSON or binary column of any table in the test database,
and not in any key or value in the test Redis database. `traces_of` returns what it
found, so a failing assertion prints where the person is still held:

    assert traces_of("amy@example.com", "Amelia") == []
"""

import base64
import json
from dataclasses import dataclass
from typing import cast

import redis
from django.conf import settings
from django.db import connection

# Every column type that can hold a piece of text, directly or encoded.
_SEARCHED_TYPES = ("text", "character varying", "character", "json", "jsonb", "bytea", "ARRAY", "USER-DEFINED")


@dataclass(frozen=True)
class Trace:
    where: str  # "table.column" or "redis:<key>"
    needle: str
    sample: str

    def __str__(self) -> str:
        return f"{self.needle!r} in {self.where}: {self.sample}"


def _columns() -> list[tuple[str, str, str]]:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT c.table_name, c.column_name, c.data_type
            FROM information_schema.columns c
            JOIN information_schema.tables t
              ON t.table_schema = c.table_schema AND t.table_name = c.table_name
            WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'
              AND c.data_type = ANY(%s)
            ORDER BY c.table_name, c.column_name
            """,
            [list(_SEARCHED_TYPES)],
        )
        return list(cursor.fetchall())


def _as_text(column: str, data_type: str) -> str:
    quoted = connection.ops.quote_name(column)
    if data_type == "bytea":
        # Binary columns may hold the text raw (UTF-8) or escaped; search the decoding.
        return f"convert_from({quoted}, 'LATIN1')"
    return f"{quoted}::text"


def _database_traces(needles: list[str]) -> list[Trace]:
    found: list[Trace] = []
    with connection.cursor() as cursor:
        for table, column, data_type in _columns():
            expression = _as_text(column, data_type)
            for needle in needles:
                cursor.execute(
                    f"SELECT {expression} FROM {connection.ops.quote_name(table)} "  # noqa: S608 - names from the catalogue
                    f"WHERE position(lower(%s) in lower({expression})) > 0 LIMIT 3",
                    [needle],
                )
                found += [Trace(f"{table}.{column}", needle, str(row[0])[:200]) for row in cursor.fetchall()]
    return found


def _raw(reply: bytes | str) -> bytes:
    # The client decodes nothing (no decode_responses), so every reply is bytes; redis-py's
    # types cannot tell and allow str too.
    return reply if isinstance(reply, bytes) else reply.encode()


def _redis_values(client: redis.Redis, key: bytes) -> list[bytes]:
    kind = _raw(client.type(key)).decode()
    if kind == "string":
        return [_raw(client.get(key) or b"")]
    if kind == "hash":
        return [_raw(part) for pair in client.hgetall(key).items() for part in pair]
    if kind == "list":
        return [_raw(item) for item in client.lrange(key, 0, -1)]
    if kind == "set":
        return [_raw(member) for member in client.smembers(key)]
    if kind == "zset":
        # Asked without scores, the reply is the members alone; redis-py's type covers both shapes.
        return [_raw(member) for member in cast(list[bytes | str], client.zrange(key, 0, -1))]
    if kind == "stream":
        entries = client.xrange(key) or []
        return [_raw(part) for _, fields in entries for pair in (fields or {}).items() for part in pair]
    return []


def _decoded(value: bytes) -> list[bytes]:
    """A value, plus the body of a Celery message inside it: kombu stores task
    arguments base64-encoded, where a plain search would miss an address."""
    try:
        message = json.loads(value)
        if isinstance(message, dict) and message.get("properties", {}).get("body_encoding") == "base64":
            return [value, base64.b64decode(message["body"])]
    except (ValueError, TypeError, KeyError, AttributeError):
        pass
    return [value]


def _redis_traces(needles: list[str]) -> list[Trace]:
    if not settings.REDIS_URL:
        return []
    client = redis.Redis.from_url(settings.REDIS_URL)
    lowered = [(needle, needle.lower().encode()) for needle in needles]
    found: list[Trace] = []
    for key in client.scan_iter(count=500):
        haystacks = [key, *(part for value in _redis_values(client, key) for part in _decoded(value))]
        for needle, raw in lowered:
            for haystack in haystacks:
                if raw in haystack.lower():
                    found.append(Trace(f"redis:{key.decode(errors='replace')}", needle, repr(haystack[:200])))
                    break
    return found


def traces_of(*needles: str) -> list[Trace]:
    """Every place in the database and Redis that still holds any of `needles`."""
    wanted = [needle for needle in needles if needle]
    assert wanted, "search for at least one non-empty value"
    return _database_traces(wanted) + _redis_traces(wanted)


def assert_nothing_left(*needles: str) -> None:
    found = traces_of(*needles)
    assert not found, "still held after erasure:\n" + "\n".join(str(trace) for trace in found)
