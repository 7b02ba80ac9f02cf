"""A resilient client for the Finnish business register (PRH's YTJ open data, v3).

One `requests.Session` per client, explicit timeouts, a short retry loop bounded by
an overall deadline, a circuit breaker, and a bounded LRU cache. Upstream answers
are turned into the service's own `Business` (customers.register.models) at this edge; nothing
past it sees the register's field names.

Exceptions (the views decide what the service answers for each):

    BusinessError
    ├── InvalidBusinessId     not NNNNNNN-C with a valid check digit; no call made
    ├── BusinessNotFound      the register knows no such company
    ├── UpstreamError         an error status, a body that is not the register's JSON,
    │                         another company's data, a refused connection
    ├── UpstreamUnavailable   still rate limited or unavailable after the retries, or
    │   │                     too many lookups waiting; carries `retry_after` in seconds
    │   └── BreakerOpen       the breaker keeps calls away after repeated failures
    └── UpstreamTimeout       no answer within the timeouts and the deadline
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

import structlog
from cachetools import TLRUCache

from customers.business_ids import ID_FORM, check_digit
from customers.business_ids import is_valid_business_id as is_valid_business_id
from customers.register.normalize import normalize_company

if TYPE_CHECKING:
    import requests

    from customers.register.models import Business

DEFAULT_BASE_URL = "https://avoindata.prh.fi/opendata-ytj-api/v3"
USER_AGENT = "customer-api/1.0 (business lookup; python-requests)"
RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504})
BACKOFF_BASE, BACKOFF_CAP, RETRY_AFTER_CAP = 0.2, 2.0, 5.0
DEFAULT_RETRY_AFTER = 30
SOURCE = "Finnish Patent and Registration Office (PRH), YTJ open data, CC BY 4.0"


log = structlog.get_logger(__name__)


class BusinessError(Exception):
    """A lookup failed."""


class InvalidBusinessId(BusinessError, ValueError):
    """The ID is not NNNNNNN-C with a valid check digit."""


class BusinessNotFound(BusinessError):
    """The register has no company with this ID."""


class UpstreamError(BusinessError):
    """The register answered with an error or with something that is not its JSON."""


class UpstreamUnavailable(BusinessError):
    """The register is unavailable for now, or the breaker keeps calls away."""

    def __init__(self, message: str, *, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = max(1, retry_after)


class BreakerOpen(UpstreamUnavailable):
    """The breaker is open: the register failed repeatedly, so no call is made for now."""


class UpstreamTimeout(BusinessError):
    """The register did not answer within the timeouts and the deadline."""


def normalize_business_id(raw: str) -> str:
    """The canonical ID from user input (surrounding spaces allowed); raises InvalidBusinessId."""
    value = raw.strip()
    if not ID_FORM.fullmatch(value):
        raise InvalidBusinessId("must be seven digits, a hyphen and a check digit (NNNNNNN-C)")
    if check_digit(value[:7]) != int(value[8]):
        raise InvalidBusinessId("the check digit does not match")
    return value


class _Breaker:
    """Consecutive-failure circuit breaker with a single half-open probe."""

    def __init__(self, *, failures: int, cooldown: float, clock: Callable[[], float]) -> None:
        self._threshold, self._cooldown, self._clock = failures, cooldown, clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> str:
        """The state: closed, open (calls kept away) or half-open (the cooldown is over)."""
        with self._lock:
            if self._opened_at is None:
                return "closed"
            if self._opened_at + self._cooldown - self._clock() > 0 or self._probing:
                return "open"
            return "half-open"

    def before_call(self) -> None:
        """Raise UpstreamUnavailable while open; let exactly one probe through after."""
        with self._lock:
            if self._opened_at is None:
                return
            remaining = self._opened_at + self._cooldown - self._clock()
            if remaining > 0 or self._probing:
                wait = max(remaining, 1.0)
                raise BreakerOpen(
                    "The business register is failing; calls are paused.",
                    retry_after=math.ceil(wait),
                )
            self._probing = True

    def succeeded(self) -> None:
        with self._lock:
            self._failures, self._opened_at, self._probing = 0, None, False

    def failed(self) -> None:
        with self._lock:
            self._failures += 1
            if self._probing or self._failures >= self._threshold:
                self._opened_at = self._clock()
            self._probing = False


def _retry_after_seconds(value: str | None) -> float | None:
    """`Retry-After` as seconds: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


class BusinessClient:
    """Looks companies up by business ID; one per app, safe to share between threads."""

    def __init__(
        self,
        *,
        base_url: str = DEFAULT_BASE_URL,
        connect_timeout: float = 2.0,
        read_timeout: float = 5.0,
        deadline: float = 8.0,
        retries: int = 2,
        cache_ttl: float = 3600,
        not_found_ttl: float = 300,
        cache_size: int = 10000,
        breaker_failures: int = 5,
        breaker_cooldown: float = 30,
        max_concurrent: int = 8,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        session: requests.Session | None = None,
    ) -> None:
        self.url = base_url.rstrip("/") + "/companies"
        self.connect_timeout, self.read_timeout = connect_timeout, read_timeout
        self.deadline, self.retries = deadline, retries
        self.cache_ttl, self.not_found_ttl = cache_ttl, not_found_ttl
        self._clock, self._sleep = clock, sleep
        # Made on the first lookup (`_http`): a Lambda container's first request rarely
        # needs the register, and importing requests would add to every cold start.
        self._session = session
        self._session_lock = threading.Lock()
        if session is not None:
            session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
        # An LRU whose entries expire each at its own time: a "not found" sooner than a company.
        self._cache: TLRUCache[str, Business | None, float] = TLRUCache(
            maxsize=cache_size, ttu=self._expiry, timer=clock
        )
        self._cache_lock = threading.Lock()  # cachetools' caches are not thread-safe
        self._breaker = _Breaker(failures=breaker_failures, cooldown=breaker_cooldown, clock=clock)
        # A bulkhead: lookups waiting on the register hold at most this many of the
        # server's threads, so a hanging register cannot starve the other requests.
        self._slots = threading.BoundedSemaphore(max_concurrent)

    def close(self) -> None:
        if self._session is not None:
            self._session.close()

    @property
    def breaker_state(self) -> str:
        """The breaker's state: "closed", "open" or "half-open" (readiness and metrics)."""
        return self._breaker.state

    def _http(self) -> requests.Session:
        """The client's one session, made (and requests imported) on first use."""
        with self._session_lock:
            if self._session is None:
                import requests

                session = requests.Session()
                session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
                self._session = session
            return self._session

    def _expiry(self, _key: str, value: Business | None, now: float) -> float:
        return now + (self.cache_ttl if value is not None else self.not_found_ttl)

    def _remember(self, canonical: str, value: Business | None) -> None:
        with self._cache_lock:
            self._cache[canonical] = value

    def lookup(self, business_id: str) -> Business:
        """The company with this ID; raises a BusinessError subclass."""
        canonical = normalize_business_id(business_id)
        if self.cache_ttl > 0:
            with self._cache_lock:
                try:
                    cached = self._cache[canonical]
                except KeyError:
                    pass
                else:
                    if cached is None:
                        raise BusinessNotFound("No company has this business ID.")
                    return cached
        if not self._slots.acquire(blocking=False):
            raise UpstreamUnavailable(
                "Too many lookups are waiting for the business register; retry later.",
                retry_after=1,
            )
        try:
            return self._call_register(canonical)
        finally:
            self._slots.release()

    def _call_register(self, canonical: str) -> Business:
        """A lookup past the cache: through the breaker, its outcome cached."""
        self._breaker.before_call()
        try:
            business = self._fetch(canonical)
        except BusinessNotFound:
            self._breaker.succeeded()
            if self.cache_ttl > 0:
                self._remember(canonical, None)
            raise
        except BusinessError:
            self._breaker.failed()
            raise
        self._breaker.succeeded()
        if self.cache_ttl > 0:
            self._remember(canonical, business)
        return business

    def _fetch(self, business_id: str) -> Business:
        """One lookup: attempts and waits until an answer, a final failure or the deadline."""
        import requests  # on the first lookup, not at start-up (see `_http`)

        started = self._clock()
        failure: BusinessError = UpstreamTimeout("The business register did not answer in time.")
        for attempt in range(1, self.retries + 2):
            left = self.deadline - (self._clock() - started)
            if left <= 0:
                break
            retry_after: float | None = None
            try:
                response = self._get(business_id, attempt, left)
            except requests.Timeout:
                failure = UpstreamTimeout("The business register did not answer in time.")
            except requests.RequestException:
                failure = UpstreamError("The business register could not be reached.")
            else:
                if response.status_code == 200:
                    return self._parse(response, business_id)
                if response.status_code == 404:
                    raise BusinessNotFound("No company has this business ID.")
                retry_after = _retry_after_seconds(response.headers.get("Retry-After"))
                failure = self._status_failure(response.status_code, retry_after)
                if response.status_code not in RETRIED_STATUSES:
                    raise failure
            if attempt > self.retries:
                break
            delay = random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1)))
            if retry_after is not None:
                delay = max(delay, min(retry_after, RETRY_AFTER_CAP))
            if self.deadline - (self._clock() - started) <= delay:
                break
            self._sleep(delay)
        raise failure

    def _get(self, business_id: str, attempt: int, left: float) -> requests.Response:
        began = time.perf_counter()
        status: int | None = None
        try:
            response = self._http().get(
                self.url,
                params={"businessId": business_id},
                timeout=(min(self.connect_timeout, left), min(self.read_timeout, left)),
                allow_redirects=False,
            )
            status = response.status_code
            return response
        finally:
            log.info(
                "upstream_call",
                upstream="ytj",
                status=status,
                duration_ms=round((time.perf_counter() - began) * 1000, 1),
                attempt=attempt,
            )

    @staticmethod
    def _status_failure(status: int, retry_after: float | None) -> BusinessError:
        if status in (429, 503):
            wait = retry_after if retry_after is not None else DEFAULT_RETRY_AFTER
            return UpstreamUnavailable(
                "The business register is unavailable; retry later.",
                retry_after=math.ceil(wait),
            )
        return UpstreamError(f"The business register answered {status}.")

    @staticmethod
    def _parse(response: requests.Response, business_id: str) -> Business:
        try:
            body: Any = response.json()
        except ValueError:
            raise UpstreamError("The business register sent a body that is not JSON.") from None
        if not isinstance(body, dict) or not isinstance(body.get("companies", []), list):
            raise UpstreamError("The business register sent an unexpected body.")
        companies = body.get("companies") or []
        if not companies:
            if "companies" not in body and "totalResults" not in body:
                raise UpstreamError("The business register sent an unexpected body.")
            raise BusinessNotFound("No company has this business ID.")
        for company in companies:
            if not isinstance(company, dict):
                continue
            identifier = company.get("businessId")
            if isinstance(identifier, dict) and identifier.get("value") == business_id:
                from customers.register.models import Business

                fields = normalize_company(company)
                return Business(
                    **fields,
                    source=SOURCE,
                    fetchedAt=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                )
        raise UpstreamError("The business register answered for another business ID.")
