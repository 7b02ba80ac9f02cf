"""One delivery attempt: POST the event, signed, and read what the answer means.

A 2xx is delivered. A 410 means the endpoint is gone: it is turned off. Anything else (a
timeout, a network error, any other status) is tried again later: after `Retry-After`
when a 429 or 503 gives one, else after an exponential backoff with jitter.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from typing import Literal

import requests

from customers.delivery.signing import secret_key, signed_headers

# Seconds to connect, then to get the answer: a receiver acknowledges and works later.
TIMEOUT = (3.0, 10.0)
# The longest wait between two attempts, whatever the backoff or Retry-After says.
MAX_DELAY_S = 3600.0

Outcome = Literal["delivered", "retry", "gone"]


@dataclass(frozen=True, slots=True)
class Attempt:
    """What one attempt came to: its outcome, the status (None without an answer), the
    wait the endpoint asked for (Retry-After), and why it failed, for the log."""

    outcome: Outcome
    status: int | None = None
    retry_after: float | None = None
    error: str | None = None


class Sender:
    """POSTs events to endpoints over one `requests.Session`, signed with one secret."""

    def __init__(self, secret: str) -> None:
        self._key = secret_key(secret)
        self._session = requests.Session()

    def send(self, url: str, event_id: str, body: bytes) -> Attempt:
        """One attempt; `event_id` is the webhook-id, the same on every attempt."""
        headers = signed_headers(self._key, event_id, int(time.time()), body)
        headers["Content-Type"] = "application/json"
        try:
            answer = self._session.post(
                url, data=body, headers=headers, timeout=TIMEOUT, allow_redirects=False
            )
            answer.close()
        except requests.RequestException as exc:
            return Attempt("retry", error=type(exc).__name__)
        status = answer.status_code
        if 200 <= status < 300:
            return Attempt("delivered", status)
        if status == 410:
            return Attempt("gone", status)
        wait = retry_after(answer.headers.get("Retry-After")) if status in (429, 503) else None
        return Attempt("retry", status, wait, f"HTTP {status}")

    def close(self) -> None:
        self._session.close()


def retry_after(value: str | None) -> float | None:
    """Retry-After as seconds from now: delta-seconds or an HTTP date; None if unreadable."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def next_delay(attempts: int, *, backoff_s: float, asked: float | None) -> float:
    """Seconds before attempt `attempts + 1`: what the endpoint asked for, else
    `backoff_s` doubled per attempt made, with full jitter in its upper half, so a fleet
    of failed deliveries does not come back at once."""
    if asked is not None:
        return min(asked, MAX_DELAY_S)
    ceiling = min(backoff_s * 2 ** (attempts - 1), MAX_DELAY_S)
    return random.uniform(ceiling / 2, ceiling)
