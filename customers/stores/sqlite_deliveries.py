"""The webhook relay's state in a sqlite store's database (schema step 7's tables).

The `events` table is the outbox. Each endpoint has a place in it (`after_seq`); the
relay copies the events after that place into `webhook_deliveries` and moves the place
in one transaction, so an event committed is delivered even when the process dies
right after (kill -9): the next relay finds it there, or still after the place. A
delivery is pending until it is delivered (then deleted) or its retries run out
(failed, kept for `flask events failed` and `redeliver`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from customers.stores.sqlite import SqliteStore
from db import ChangeEvent

LEASE_NAME = "relay"


@dataclass(frozen=True, slots=True)
class Due:
    """A delivery to attempt now: the event, the attempts made, when it was first due."""

    seq: int
    event: ChangeEvent
    attempts: int
    first_at: float


@dataclass(frozen=True, slots=True)
class Failure:
    """A delivery whose retries ran out."""

    url: str
    event_id: str
    subject: str
    attempts: int
    last_error: str | None


class SqliteDeliveries:
    """Deliveries, endpoints and the relay's lease, in the store's own database."""

    def __init__(self, store: SqliteStore) -> None:
        self._store = store

    def hold_lease(self, holder: str, *, now: float, seconds: float) -> bool:
        """Take or renew the one lease; True while `holder` has it. A lease not renewed
        in time (its process died) passes to the next relay that asks."""
        with self._store.writing() as conn:
            conn.execute(
                "INSERT INTO webhook_lease (name, holder, expires_at) VALUES (?, ?, ?)"
                " ON CONFLICT (name) DO UPDATE SET holder = excluded.holder,"
                " expires_at = excluded.expires_at"
                " WHERE webhook_lease.holder = excluded.holder OR webhook_lease.expires_at < ?",
                (LEASE_NAME, holder, now + seconds, now),
            )
            (current,) = conn.execute(
                "SELECT holder FROM webhook_lease WHERE name = ?", (LEASE_NAME,)
            ).fetchone()
        return bool(current == holder)

    def release_lease(self, holder: str) -> None:
        """Let go of the lease, if `holder` has it."""
        with self._store.writing() as conn:
            conn.execute(
                "DELETE FROM webhook_lease WHERE name = ? AND holder = ?", (LEASE_NAME, holder)
            )

    def register(self, url: str) -> None:
        """Start delivering to `url` from the events made from now on (one already known
        keeps its place)."""
        with self._store.writing() as conn:
            conn.execute(
                "INSERT OR IGNORE INTO webhook_endpoints (url, after_seq)"
                " SELECT ?, coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'events'), 0)",
                (url,),
            )

    def take_new(self, url: str, *, now: float, limit: int = 500) -> int:
        """Copy the events after the endpoint's place into its deliveries and move the
        place past them, in one transaction; how many. None for a disabled endpoint.

        First the endpoint's deliveries whose event has left the feed (past
        EVENTS_RETENTION_DAYS) go: a failed one could no longer be sent again, and a
        pending one could never be sent, yet would hold back its customer's later events.
        """
        with self._store.writing() as conn:
            row = conn.execute(
                "SELECT after_seq, disabled_at FROM webhook_endpoints WHERE url = ?", (url,)
            ).fetchone()
            if row is None or row[1] is not None:
                return 0
            # Events are purged oldest first: those before the oldest left are gone (all
            # up to the endpoint's place when none is left).
            conn.execute(
                "DELETE FROM webhook_deliveries WHERE url = ?"
                " AND seq < coalesce((SELECT min(seq) FROM events), ?)",
                (url, row[0] + 1),
            )
            rows = conn.execute(
                "SELECT seq, subject FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
                (row[0], limit),
            ).fetchall()
            if rows:
                conn.executemany(
                    "INSERT OR IGNORE INTO webhook_deliveries (url, seq, subject, state,"
                    " attempts, first_at, next_at) VALUES (?, ?, ?, 'pending', 0, ?, ?)",
                    [(url, seq, subject, now, now) for seq, subject in rows],
                )
                conn.execute(
                    "UPDATE webhook_endpoints SET after_seq = ? WHERE url = ?", (rows[-1][0], url)
                )
        return len(rows)

    def due(self, url: str, *, now: float, limit: int = 50) -> list[Due]:
        """Pending deliveries due now, each the first of its customer's line: a later event
        of a customer waits until the earlier one was delivered or given up."""
        with self._store.reading() as conn:
            rows = conn.execute(
                "SELECT d.seq, d.attempts, d.first_at, e.id, e.type, e.subject, e.time, e.data"
                " FROM webhook_deliveries d JOIN events e ON e.seq = d.seq"
                " WHERE d.url = ? AND d.state = 'pending' AND d.next_at <= ?"
                " AND NOT EXISTS (SELECT 1 FROM webhook_deliveries p WHERE p.url = d.url"
                " AND p.subject = d.subject AND p.state = 'pending' AND p.seq < d.seq)"
                " ORDER BY d.seq LIMIT ?",
                (url, now, limit),
            ).fetchall()
        return [
            Due(seq, ChangeEvent(eid, kind, subject, at, orjson.loads(data), str(seq)), n, first)
            for seq, n, first, eid, kind, subject, at, data in rows
        ]

    def delivered(self, url: str, seq: int) -> None:
        with self._store.writing() as conn:
            conn.execute("DELETE FROM webhook_deliveries WHERE url = ? AND seq = ?", (url, seq))

    def retry_at(self, url: str, seq: int, *, next_at: float, error: str | None) -> None:
        self._set(url, seq, "pending", next_at, error)

    def give_up(self, url: str, seq: int, *, error: str | None) -> None:
        self._set(url, seq, "failed", 0.0, error)

    def _set(self, url: str, seq: int, state: str, next_at: float, error: str | None) -> None:
        with self._store.writing() as conn:
            conn.execute(
                "UPDATE webhook_deliveries SET state = ?, attempts = attempts + 1,"
                " next_at = ?, last_error = ? WHERE url = ? AND seq = ?",
                (state, next_at, error, url, seq),
            )

    def disable(self, url: str, *, at: str) -> None:
        """Turn the endpoint off (it answered 410): nothing more is sent to it."""
        with self._store.writing() as conn:
            conn.execute("UPDATE webhook_endpoints SET disabled_at = ? WHERE url = ?", (at, url))

    def disabled(self, url: str) -> bool:
        with self._store.reading() as conn:
            row = conn.execute(
                "SELECT disabled_at FROM webhook_endpoints WHERE url = ?", (url,)
            ).fetchone()
        return row is not None and row[0] is not None

    def oldest_pending(self) -> float | None:
        """When the oldest undelivered delivery was first due (epoch seconds), if any."""
        with self._store.reading() as conn:
            (oldest,) = conn.execute(
                "SELECT min(first_at) FROM webhook_deliveries WHERE state = 'pending'"
            ).fetchone()
        return None if oldest is None else float(oldest)

    def failures(self) -> list[Failure]:
        with self._store.reading() as conn:
            rows = conn.execute(
                "SELECT d.url, e.id, d.subject, d.attempts, d.last_error FROM webhook_deliveries d"
                " JOIN events e ON e.seq = d.seq WHERE d.state = 'failed' ORDER BY d.seq, d.url"
            ).fetchall()
        return [Failure(*row) for row in rows]

    def redeliver(self, urls: tuple[str, ...], *, now: float, **which: Any) -> int:
        """Send events again, from their first attempt, to each of `urls` (as enabled
        endpoints): `event_id=` one event, or `since=` every event from that time on.
        How many events."""
        if "event_id" in which:
            query, value = "SELECT seq, subject FROM events WHERE id = ?", which["event_id"]
        else:
            query = "SELECT seq, subject FROM events WHERE time >= ? ORDER BY seq"
            value = which["since"]
        with self._store.writing() as conn:
            rows = conn.execute(query, (value,)).fetchall()
            for url in urls:
                conn.execute(
                    "INSERT OR IGNORE INTO webhook_endpoints (url, after_seq) VALUES (?, ?)",
                    (url, rows[-1][0] if rows else 0),
                )
                conn.execute(
                    "UPDATE webhook_endpoints SET disabled_at = NULL WHERE url = ?", (url,)
                )
                conn.executemany(
                    "INSERT OR REPLACE INTO webhook_deliveries (url, seq, subject, state,"
                    " attempts, first_at, next_at) VALUES (?, ?, ?, 'pending', 0, ?, ?)",
                    [(url, seq, subject, now, now) for seq, subject in rows],
                )
        return len(rows)
