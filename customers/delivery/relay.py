"""The relay: delivers a sqlite store's events to the webhook endpoints.

Every worker process runs one, but only the holder of the lease in the database sends,
so each event goes once per endpoint per attempt however many workers share the file.
Each endpoint has a thread of its own: a slow or failing endpoint holds back only its own
deliveries. Within an endpoint a customer's events go in version order (see
`SqliteDeliveries.due`). Attempts and failures are counted, and the age of the oldest
undelivered event logged, in `webhook_relay` lines.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import orjson
import structlog

from customers.delivery.sender import TIMEOUT, Attempt, Sender, next_delay
from customers.stores.sqlite_deliveries import Due, SqliteDeliveries
from db import utc_timestamp

log = structlog.get_logger(__name__)

# The lease lasts LEASE_S and is renewed every RENEW_S; a holder sends only while its
# lease outlasts one more attempt, so two relays never send at once. A holder that died
# is followed within LEASE_S; one that stops lets go at once.
LEASE_S = 20.0
RENEW_S = 2.0
# Seconds an endpoint's thread waits when it has nothing due.
IDLE_S = 0.2
# Seconds between `webhook_relay` summary lines while there is anything to report.
REPORT_S = 5.0


class Relay:
    """The endpoints' threads and the lease's."""

    def __init__(
        self,
        deliveries: SqliteDeliveries,
        sender: Sender,
        urls: tuple[str, ...],
        *,
        backoff_s: float,
        retry_for_s: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._deliveries = deliveries
        self._sender = sender
        self._urls = urls
        self._backoff_s = backoff_s
        self._retry_for_s = retry_for_s
        self._clock = clock
        self._holder = uuid.uuid4().hex
        self._lease_until = 0.0
        self._stop = threading.Event()
        self._counts_lock = threading.Lock()
        self.attempts = 0
        self.failures = 0
        self._threads: list[threading.Thread] = []

    def start(self) -> None:
        """Register the endpoints (so every event from now on is theirs), then run."""
        for url in self._urls:
            self._deliveries.register(url)
        self._threads = [threading.Thread(target=self._hold, name="webhook-lease", daemon=True)]
        self._threads += [
            threading.Thread(target=self._serve, args=(url,), name="webhook-relay", daemon=True)
            for url in self._urls
        ]
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        """Stop sending, then let go of the lease for the next relay; safe to call twice."""
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=sum(TIMEOUT) + 1)
        self._threads = []
        self._sender.close()
        self._deliveries.release_lease(self._holder)

    def _hold(self) -> None:
        last_report = 0.0
        while not self._stop.is_set():
            now = self._clock()
            try:
                if self._deliveries.hold_lease(self._holder, now=now, seconds=LEASE_S):
                    self._lease_until = now + LEASE_S
                    if now - last_report >= REPORT_S:
                        last_report = now
                        self._report(now)
            except Exception:  # a busy file, say: the lease lapses and is taken again
                log.exception("webhook_lease_failed")
            self._stop.wait(RENEW_S)

    def _report(self, now: float) -> None:
        oldest = self._deliveries.oldest_pending()
        with self._counts_lock:
            attempts, failures = self.attempts, self.failures
        if attempts or oldest is not None:
            age = None if oldest is None else round(now - oldest, 3)
            log.info(
                "webhook_relay", attempts=attempts, failures=failures, oldest_undelivered_s=age
            )

    def _leading(self) -> bool:
        """Whether this relay may send: its lease outlasts one more attempt."""
        return self._lease_until > self._clock() + sum(TIMEOUT)

    def _serve(self, url: str) -> None:
        while not self._stop.is_set():
            sent = 0
            try:
                if self._leading():
                    sent = self.run_once(url)
            except Exception:
                log.exception("webhook_relay_failed", url=url)
            if not sent:
                self._stop.wait(IDLE_S)

    def run_once(self, url: str) -> int:
        """Take new events, then attempt each delivery due; how many were attempted."""
        now = self._clock()
        if self._deliveries.disabled(url):  # a 410 turned it off: sent nothing more
            return 0
        self._deliveries.take_new(url, now=now)
        due = self._deliveries.due(url, now=now)
        for delivery in due:
            if self._stop.is_set() or not self._leading():
                break
            if self._attempt(url, delivery) == "gone":
                break
        return len(due)

    def _attempt(self, url: str, delivery: Due) -> str:
        body = orjson.dumps(delivery.event.to_cloudevent())
        started = time.monotonic()
        attempt = self._sender.send(url, delivery.event.id, body)
        number = delivery.attempts + 1
        with self._counts_lock:
            self.attempts += 1
            self.failures += attempt.outcome != "delivered"
        fields: dict[str, Any] = {
            "url": url,
            "event_id": delivery.event.id,
            "attempt": number,
            "status": attempt.status,
            "outcome": attempt.outcome,
            "duration_ms": round((time.monotonic() - started) * 1000, 2),
        }
        if attempt.outcome == "delivered":
            self._deliveries.delivered(url, delivery.seq)
        elif attempt.outcome == "gone":
            self._deliveries.disable(url, at=utc_timestamp())
            log.warning("webhook_endpoint_disabled", **fields, detail="answered 410 Gone")
            return attempt.outcome
        else:
            self._schedule(url, delivery, attempt, number)
        log.info("webhook_attempt", **fields, error=attempt.error)
        return attempt.outcome

    def _schedule(self, url: str, delivery: Due, attempt: Attempt, number: int) -> None:
        now = self._clock()
        delay = next_delay(number, backoff_s=self._backoff_s, asked=attempt.retry_after)
        if now + delay - delivery.first_at > self._retry_for_s:
            self._deliveries.give_up(url, delivery.seq, error=attempt.error)
            log.warning("webhook_failed", url=url, event_id=delivery.event.id, attempts=number)
        else:
            self._deliveries.retry_at(url, delivery.seq, next_at=now + delay, error=attempt.error)


def start_relay(settings: dict[str, Any], store: Any) -> Relay | None:
    """The relay the settings ask for, started; None without WEBHOOK_URL."""
    if not settings["WEBHOOK_URL"]:
        return None
    relay = Relay(
        SqliteDeliveries(store),
        Sender(settings["WEBHOOK_SECRET"]),
        tuple(settings["WEBHOOK_URL"]),
        backoff_s=settings["WEBHOOK_BACKOFF_S"],
        retry_for_s=settings["WEBHOOK_RETRY_FOR_S"],
    )
    relay.start()
    return relay
