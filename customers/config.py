"""Settings: built-in defaults, read from the environment in one place.

`settings_from_env` converts and checks every variable the service reads, so a
typo stops the service at start with a message naming the variable instead of
failing on the first request. `create_app` layers: defaults, then these, then
whatever mapping the caller passes.
"""

from __future__ import annotations

import base64
import binascii
import ipaddress
import os
import re
import socket
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import SplitResult, urlsplit

from db import DEFAULT_EVENTS_RETENTION_DAYS, DEFAULT_HISTORY_RETENTION_DAYS

DEFAULTS: dict[str, Any] = {
    "PORT": 3000,
    "HOST": "127.0.0.1",
    "WORKERS": 0,  # 0: one per core for a file store, one for memory
    "SQLITE_PATH": ":memory:",
    "LOG_LEVEL": "INFO",
    "MAX_CONTENT_LENGTH": 64 * 1024,
    # Live Idempotency-Key records (each kept a day) one client, and all clients, may
    # hold; past them a new key is refused (429, 503). About 1.7 KiB each with the
    # longest key (python -m bench.idempotency_records).
    "IDEMPOTENCY_KEYS_PER_CLIENT": 10_000,
    "IDEMPOTENCY_KEYS_TOTAL": 100_000,
    # Days each customer's change history entries are kept; older ones are purged as
    # writes go (sqlite) or expire by the table's TTL (DynamoDB).
    "HISTORY_RETENTION_DAYS": DEFAULT_HISTORY_RETENTION_DAYS,
    # Days change events stay in the feed (GET /events); a cursor older than that is a
    # 410, and its consumer resynchronises.
    "EVENTS_RETENTION_DAYS": DEFAULT_EVENTS_RETENTION_DAYS,
    # Seconds (DynamoDB only) the feed stays behind the clock, so that a transaction
    # stamped just before a reader's page commits before the reader passes it: see
    # docs/events.md.
    "EVENTS_SETTLE_S": 30.0,
    # Webhooks (docs/events.md): endpoints each event is POSTed to, signed with the secret;
    # none by default. The first retry's delay, doubled each time after, and how long an
    # event is retried before it is marked failed.
    "WEBHOOK_URL": (),
    "WEBHOOK_SECRET": None,
    "WEBHOOK_BACKOFF_S": 5.0,
    "WEBHOOK_RETRY_FOR_S": 24 * 3600.0,
    # Endpoints on loopback, private or link-local addresses, or over plain http: for
    # development and tests only.
    "WEBHOOK_ALLOW_PRIVATE": False,
    # Seconds a client has to send a whole body once its headers are in; then a 408.
    # 64 KiB take well under a second on any working link.
    "BODY_READ_TIMEOUT": 5.0,
    # Bytes of request bodies one process holds at once, across all its connections; a
    # body that would go past it is a 503. 512 bodies of the largest size, 32 MiB.
    "BODY_MEMORY_LIMIT": 32 * 1024 * 1024,
    # Seconds a connection has to send a whole request head, counted from its opening or
    # from the end of the answer before; then it is closed. Idle and slow-header
    # connections cost nothing for longer. Behind a proxy that keeps connections open,
    # set it above the proxy's idle timeout.
    "HEADER_READ_TIMEOUT": 10.0,
    # Connections one worker keeps open at once; 0: as many as its file-descriptor limit
    # allows (raised to the hard limit at start), less a reserve for files and sockets.
    "MAX_CONNECTIONS": 0,
    # HTTP/2 over cleartext (prior knowledge), for a proxy in front that speaks it.
    "HTTP2": False,
    # Seconds a stopping server gives the requests in flight before it ends a worker still
    # busy: more than the slowest request (a body read, then a business lookup), less than
    # the 30 s Kubernetes and ECS wait before their own SIGKILL.
    "DRAIN_TIMEOUT": 20,
    "CUSTOMER_STORE": "sqlite",
    "DYNAMODB_TABLE": "customers",
    "DYNAMODB_CREATE_TABLE": False,
    "AWS_REGION": None,
    "AWS_ENDPOINT_URL": None,
    "BUSINESS_API_URL": "https://avoindata.prh.fi/opendata-ytj-api/v3",
    "BUSINESS_CONNECT_TIMEOUT": 2.0,
    "BUSINESS_READ_TIMEOUT": 5.0,
    "BUSINESS_DEADLINE": 8.0,
    "BUSINESS_RETRIES": 2,
    "BUSINESS_CACHE_TTL": 3600.0,
    "BUSINESS_NOT_FOUND_TTL": 300.0,
    "BUSINESS_CACHE_SIZE": 10000,
    "BUSINESS_BREAKER_FAILURES": 5,
    "BUSINESS_BREAKER_COOLDOWN": 30.0,
    "BUSINESS_MAX_CONCURRENT": 4,
    "API_KEYS": (),
    "API_KEYS_SSM_PARAMETER": None,
    "REQUIRE_API_KEYS": False,
    "RATE_LIMIT": "",
    "RATE_LIMIT_STORAGE_URI": "memory://",
    "TRUSTED_PROXIES": 0,
    "CORS_ORIGINS": (),
    # Prometheus metrics at /metrics on this port of HOST, never the API's port; 0: off.
    "METRICS_PORT": 0,
    # "emf": the access line carries CloudWatch's Embedded Metric Format (always on Lambda,
    # where CloudWatch reads it); "": it does not.
    "METRICS": "",
    # OpenTelemetry traces, on when the standard OTEL_* variables ask for them (see
    # tracing_requested); the SDK reads the rest of them itself.
    "TRACING": False,
}

# Threads per server process that run requests (granian's blocking threads). Business
# lookups waiting on the register may hold at most half of them (BUSINESS_MAX_CONCURRENT),
# so a hanging register always leaves the other half for everything else. Eight, from
# `python -m bench.threads`: on one core, 32 threads contend for the GIL and cost about a
# seventh more CPU per request, with a longer tail; one or two cost more as well (every
# request then wakes an idle thread), and leave no room for lookups.
SERVER_THREADS = 8

LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class ConfigError(ValueError):
    """A setting has a value the service cannot run with; the message names it."""


def _integer(low: int, high: int | None = None) -> Callable[[str], int]:
    def convert(raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise ValueError("must be a whole number") from None
        if value < low or (high is not None and value > high):
            bound = f"between {low} and {high}" if high is not None else f"at least {low}"
            raise ValueError(f"must be {bound}")
        return value

    return convert


def _seconds(*, allow_zero: bool) -> Callable[[str], float]:
    def convert(raw: str) -> float:
        try:
            value = float(raw.strip())
        except ValueError:
            raise ValueError("must be a number of seconds") from None
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("must be a finite number of seconds")
        if value < 0 or (value == 0 and not allow_zero):
            raise ValueError("must be a positive number of seconds")
        return value

    return convert


def _flag(raw: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("", "0", "false", "no", "off"):
        return False
    raise ValueError("must be 1 or 0")


def _choice(*choices: str) -> Callable[[str], str]:
    def convert(raw: str) -> str:
        value = raw.strip().lower()
        if value not in choices:
            raise ValueError(f"must be one of {', '.join(choices)}")
        return value

    return convert


def _log_level(raw: str) -> str:
    value = raw.strip().upper()
    if value not in LOG_LEVELS:
        raise ValueError(f"must be one of {', '.join(LOG_LEVELS)}")
    return value


def _split_url(value: str) -> SplitResult:
    """urlsplit, refusing a port out of range (urlsplit itself only fails once it is read)."""
    parts = urlsplit(value)
    try:
        if parts.port == 0:
            raise ValueError
    except ValueError:
        raise ValueError("has a port that is not a number from 1 to 65535") from None
    return parts


def _http_url(raw: str) -> str:
    value = raw.strip()
    parts = _split_url(value)
    if parts.scheme not in ("http", "https") or not parts.hostname or "?" in value or "#" in value:
        raise ValueError("must be an http(s) URL with a host, without query or fragment")
    return value.rstrip("/")


def _webhook_urls(raw: str) -> tuple[str, ...]:
    """Comma-separated http(s) URLs (whether https is required is check_settings' call)."""
    urls = tuple(dict.fromkeys(_http_url(url) for url in raw.split(",") if url.strip()))
    if not urls:
        raise ValueError("must name at least one URL")
    return urls


# Standard Webhooks secrets: `whsec_` and the base64 of the key.
WHSEC_PREFIX = "whsec_"
MIN_WEBHOOK_KEY_BYTES = 24


def _webhook_secret(raw: str) -> str:
    value = raw.strip()
    rule = f"must be {WHSEC_PREFIX} and the base64 of at least {MIN_WEBHOOK_KEY_BYTES} bytes"
    if not value.startswith(WHSEC_PREFIX):
        raise ValueError(rule)
    try:
        key = base64.b64decode(value.removeprefix(WHSEC_PREFIX), validate=True)
    except binascii.Error:
        raise ValueError(rule) from None
    if len(key) < MIN_WEBHOOK_KEY_BYTES:
        raise ValueError(rule)
    return value


def _optional(convert: Callable[[str], str]) -> Callable[[str], str | None]:
    """`convert`, with an empty value meaning unset."""

    def optional(raw: str) -> str | None:
        return convert(raw) if raw.strip() else None

    return optional


def _matching(pattern: str, rule: str) -> Callable[[str], str]:
    """The value when it matches `pattern` whole; else ValueError saying `rule`."""
    compiled = re.compile(pattern)

    def convert(raw: str) -> str:
        value = raw.strip()
        if not compiled.fullmatch(value):
            raise ValueError(rule)
        return value

    return convert


def _sqlite_path(raw: str) -> str:
    """An empty SQLITE_PATH would be sqlite's private temporary database: the data would
    vanish at the stop, as with `:memory:`, while the operator meant a file."""
    value = raw.strip()
    if not value:
        raise ValueError("is empty: name a database file, or unset it for the in-memory store")
    return value


def _ip_address(raw: str) -> str:
    """granian listens on an IP address; a host name would fail only once it starts."""
    try:
        return str(ipaddress.ip_address(raw.strip()))
    except ValueError:
        raise ValueError("must be an IP address, such as 127.0.0.1 or 0.0.0.0") from None


def _csv(raw: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in raw.split(",") if item.strip())


# Characters a client can send in `X-API-Key` or after `Bearer` and have arrive as sent:
# visible ASCII. Werkzeug reads header bytes as latin-1, so a key holding `ä` (sent as
# UTF-8) would never match, and nothing would say why.
API_KEY_CHARACTERS = re.compile(r"[\x21-\x7e]+")


def _api_keys(raw: str) -> tuple[str, ...]:
    keys = _csv(raw)
    for position, key in enumerate(keys, 1):
        if not API_KEY_CHARACTERS.fullmatch(key):
            # The key itself is never shown: only where it is in the list.
            raise ValueError(
                f"key {position} holds a character a client cannot send in a header: "
                "keys are visible ASCII characters, without spaces"
            )
    return keys


# Hosts as a browser writes them in `Origin`: DNS names in ASCII (IDNA), or IPv4.
ORIGIN_HOST = re.compile(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?")
DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(entry: str) -> str:
    """`entry` as the `Origin` a browser sends (lowercase, no default port); ValueError else.

    flask-cors compares each request's `Origin` with the listed entries as text, and reads
    an entry holding `*`, `[` or `?` as a regular expression. An entry with a path, a
    trailing slash, no scheme or a default port matches no request: CORS would stay off,
    and no `Access-Control-Allow-Origin` would ever be sent.
    """
    example = "such as https://app.example.com or http://localhost:8080"
    parts = _split_url(entry.lower())
    host = parts.hostname or ""
    if parts.scheme not in DEFAULT_PORTS or not ORIGIN_HOST.fullmatch(host):
        raise ValueError(
            f"{entry!r} is not an origin: each is scheme://host[:port] as a browser sends "
            f"it, {example} (no wildcards, no IPv6 literals)"
        )
    port = "" if parts.port in (None, DEFAULT_PORTS[parts.scheme]) else f":{parts.port}"
    origin = f"{parts.scheme}://{host}{port}"
    if entry.lower() != origin:
        raise ValueError(
            f"{entry!r} is not an origin as a browser sends it (no path, no trailing slash, "
            f"no default port): write {origin}"
        )
    return origin


def _origins(raw: str) -> tuple[str, ...]:
    return tuple(_origin(entry) for entry in _csv(raw))


REDIS_SCHEMES = ("redis://", "rediss://", "redis+unix://")


# `limits` reads "1/0 minute" as once a minute: a zero count of periods is refused here.
ZERO_PERIODS = re.compile(r"(?:/|\bper)\s*0+\s", re.IGNORECASE)


def _rate_limit(raw: str) -> str:
    from limits import parse_many

    value = raw.strip()
    if value and (any(item.amount < 1 for item in parse_many(value)) or ZERO_PERIODS.search(value)):
        raise ValueError("a limit of 0 requests, or per 0 periods, would refuse everything")
    return value


def _limit_storage(raw: str) -> str:
    """memory:// (this process only) or a Redis URI that every worker and instance shares."""
    value = raw.strip()
    if value != "memory://" and not value.startswith(REDIS_SCHEMES):
        raise ValueError(f"must be memory:// or a URI starting {', '.join(REDIS_SCHEMES)}")
    if value.startswith(("redis://", "rediss://")):
        _split_url(value)  # a port that is no port would fail at the first request only
    return value


CONVERTERS: dict[str, Callable[[str], Any]] = {
    "PORT": _integer(1, 65535),
    "HOST": _ip_address,
    "WORKERS": _integer(0, 64),
    "SQLITE_PATH": _sqlite_path,
    "LOG_LEVEL": _log_level,
    "BODY_READ_TIMEOUT": _seconds(allow_zero=False),
    "BODY_MEMORY_LIMIT": _integer(1),
    "HEADER_READ_TIMEOUT": _seconds(allow_zero=False),
    "MAX_CONNECTIONS": _integer(0),
    "HTTP2": _flag,
    "IDEMPOTENCY_KEYS_PER_CLIENT": _integer(1),
    "IDEMPOTENCY_KEYS_TOTAL": _integer(1),
    "DRAIN_TIMEOUT": _integer(1, 3600),
    "HISTORY_RETENTION_DAYS": _integer(1, 36500),
    "EVENTS_RETENTION_DAYS": _integer(1, 36500),
    "EVENTS_SETTLE_S": _seconds(allow_zero=True),
    "CUSTOMER_STORE": _choice("sqlite", "dynamodb"),
    # DynamoDB's rule for table names.
    "DYNAMODB_TABLE": _matching(
        r"[A-Za-z0-9_.-]{3,255}", "must be 3 to 255 letters, digits, '_', '-' or '.'"
    ),
    "DYNAMODB_CREATE_TABLE": _flag,
    "AWS_REGION": _optional(
        _matching(r"[a-z]{2}(-[a-z]+)+-[0-9]+", "must be a region name such as eu-north-1")
    ),
    "AWS_ENDPOINT_URL": _optional(_http_url),
    "BUSINESS_API_URL": _http_url,
    "BUSINESS_CONNECT_TIMEOUT": _seconds(allow_zero=False),
    "BUSINESS_READ_TIMEOUT": _seconds(allow_zero=False),
    "BUSINESS_DEADLINE": _seconds(allow_zero=False),
    "BUSINESS_RETRIES": _integer(0, 10),
    "BUSINESS_CACHE_TTL": _seconds(allow_zero=True),
    "BUSINESS_NOT_FOUND_TTL": _seconds(allow_zero=True),
    "BUSINESS_CACHE_SIZE": _integer(1),
    "BUSINESS_BREAKER_FAILURES": _integer(1),
    "BUSINESS_BREAKER_COOLDOWN": _seconds(allow_zero=False),
    "BUSINESS_MAX_CONCURRENT": _integer(1, SERVER_THREADS // 2),
    "API_KEYS": _api_keys,
    # A parameter's name (/customer-api/prod/api-keys) or its ARN, as GetParameter takes it.
    "API_KEYS_SSM_PARAMETER": _optional(
        _matching(
            r"(arn:[a-z-]+:ssm:[a-z0-9-]+:[0-9]{12}:parameter)?/?[A-Za-z0-9_.-]+(/[A-Za-z0-9_.-]+)*",
            "must be an SSM parameter name such as /customer-api/prod/api-keys, or its ARN",
        )
    ),
    "REQUIRE_API_KEYS": _flag,
    "RATE_LIMIT": _rate_limit,
    "RATE_LIMIT_STORAGE_URI": _limit_storage,
    "TRUSTED_PROXIES": _integer(0, 5),
    "CORS_ORIGINS": _origins,
    "METRICS_PORT": _integer(0, 65535),
    "METRICS": _choice("", "emf"),
    "WEBHOOK_URL": _webhook_urls,
    "WEBHOOK_SECRET": _webhook_secret,
    "WEBHOOK_BACKOFF_S": _seconds(allow_zero=False),
    "WEBHOOK_RETRY_FOR_S": _seconds(allow_zero=False),
    "WEBHOOK_ALLOW_PRIVATE": _flag,
}

# Values that are secrets: a conversion error must not echo them (a Redis URI may hold
# a password).
SECRET_SETTINGS = frozenset({"API_KEYS", "RATE_LIMIT_STORAGE_URI", "WEBHOOK_SECRET"})


def settings_from_env(environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """Convert every variable the service reads that is set in `environ`.

    Raises ConfigError naming the first variable whose value is unusable.
    """
    environ = os.environ if environ is None else environ
    settings: dict[str, Any] = {}
    for name, convert in CONVERTERS.items():
        raw = environ.get(name)
        if raw is None:
            continue
        try:
            settings[name] = convert(raw)
        except ValueError as exc:
            shown = "<hidden>" if name in SECRET_SETTINGS else repr(raw)
            raise ConfigError(f"{name}={shown}: {exc}") from None
    _check_store_choice(settings)
    if tracing_requested(environ):
        settings["TRACING"] = True
    return settings


# The endpoint variables of OTLP, either of which turns traces on.
OTLP_ENDPOINTS = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")


def tracing_requested(environ: Mapping[str, str]) -> bool:
    """Whether the OTEL_* variables ask for traces: OTEL_TRACES_EXPORTER=otlp, or an OTLP
    endpoint given, unless OTEL_TRACES_EXPORTER=none or OTEL_SDK_DISABLED=true.

    Raises ConfigError for an exporter the service does not ship (only OTLP over HTTP).
    """
    exporter = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if exporter not in ("", "otlp", "none"):
        raise ConfigError(
            f"OTEL_TRACES_EXPORTER={exporter!r}: must be otlp (OTLP over HTTP) or none"
        )
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true" or exporter == "none":
        return False
    return exporter == "otlp" or any(environ.get(name, "").strip() for name in OTLP_ENDPOINTS)


# Settings only one store reads. CUSTOMER_STORE alone picks the store, so any of these
# beside the other store would be ignored: the service would run on a store the operator
# did not mean (DYNAMODB_TABLE set, and the customers kept in memory).
DYNAMODB_ONLY = ("DYNAMODB_TABLE", "DYNAMODB_CREATE_TABLE")
SQLITE_ONLY = ("SQLITE_PATH",)


def _check_store_choice(found: Mapping[str, Any]) -> None:
    """Refuse a variable of one store set (to other than its default) beside CUSTOMER_STORE
    naming the other store."""
    store = found.get("CUSTOMER_STORE", DEFAULTS["CUSTOMER_STORE"])
    other, names = ("dynamodb", DYNAMODB_ONLY) if store == "sqlite" else ("sqlite", SQLITE_ONLY)
    for name in names:
        if found.get(name, DEFAULTS[name]) != DEFAULTS[name]:
            raise ConfigError(
                f"{name}={found[name]!r}: only the {other} store reads it, and CUSTOMER_STORE "
                f"is {store}: set CUSTOMER_STORE={other}, or unset {name}"
            )


def check_webhook_urls(settings: Mapping[str, Any]) -> None:
    """Refuse webhook endpoints that are not https, or whose host resolves to a loopback,
    private, link-local or otherwise non-public address (a webhook must not reach into the
    service's own network), unless WEBHOOK_ALLOW_PRIVATE; and endpoints without a secret.

    Resolves each host, so it runs at start, once. Raises ConfigError naming WEBHOOK_URL.
    """
    urls = settings["WEBHOOK_URL"]
    if urls and settings["WEBHOOK_SECRET"] is None:
        raise ConfigError("WEBHOOK_URL is set but WEBHOOK_SECRET is not: deliveries are signed")
    if settings["WEBHOOK_ALLOW_PRIVATE"]:
        return
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme != "https":
            raise ConfigError(
                f"WEBHOOK_URL={url!r}: must be https (WEBHOOK_ALLOW_PRIVATE=1 for development)"
            )
        try:
            found = socket.getaddrinfo(parts.hostname, parts.port or 443, proto=socket.IPPROTO_TCP)
        except OSError as exc:
            raise ConfigError(f"WEBHOOK_URL={url!r}: its host does not resolve ({exc})") from None
        for *_, address in found:
            ip = ipaddress.ip_address(str(address[0]).partition("%")[0])
            if not ip.is_global:
                raise ConfigError(
                    f"WEBHOOK_URL={url!r}: resolves to {ip}, a loopback, private or link-local"
                    " address (WEBHOOK_ALLOW_PRIVATE=1 for development)"
                )


def check_settings(settings: Mapping[str, Any]) -> None:
    """Reject combinations no single variable can see; raises ConfigError."""
    if settings["BODY_MEMORY_LIMIT"] <= settings["MAX_CONTENT_LENGTH"]:
        raise ConfigError(
            f"BODY_MEMORY_LIMIT: must be more than the largest body "
            f"({settings['MAX_CONTENT_LENGTH']} bytes), or no body could be read"
        )
    if settings["METRICS_PORT"] and settings["METRICS_PORT"] == settings["PORT"]:
        raise ConfigError(
            f"METRICS_PORT={settings['METRICS_PORT']}: the metrics need a port of their own, "
            "not the API's (PORT), so that /metrics is never public"
        )
    connect = settings["BUSINESS_CONNECT_TIMEOUT"]
    if settings["BUSINESS_DEADLINE"] < connect:
        raise ConfigError(
            "BUSINESS_DEADLINE: must be at least BUSINESS_CONNECT_TIMEOUT "
            f"({connect} s), or no lookup could ever finish"
        )
    if (
        settings["REQUIRE_API_KEYS"]
        and not settings["API_KEYS"]
        and not settings["API_KEYS_SSM_PARAMETER"]
    ):
        # Also checked where the keys are loaded (an SSM parameter may hold none); here
        # it stops `python app.py` before any worker starts.
        raise ConfigError(
            "REQUIRE_API_KEYS=1 but neither API_KEYS nor API_KEYS_SSM_PARAMETER gives a key"
        )
    if settings["WEBHOOK_URL"] and settings["CUSTOMER_STORE"] == "dynamodb":
        raise ConfigError(
            "WEBHOOK_URL: the service delivers webhooks from a sqlite store; on DynamoDB the"
            " table's stream does (template.yaml's DeliveryFunction)"
        )
    check_webhook_urls(settings)
