"""OpenTelemetry traces, on only when the standard OTEL_* variables ask for them.

Imported only then (see `config.tracing_requested`): with tracing off, nothing of
OpenTelemetry is imported, and the cold start and `make bench` stay as they were.

Instrumented explicitly, no auto-discovery: Flask (a server span per request, named by
its route, taking the caller's W3C `traceparent`), requests (the business register,
a client span under the request's) and botocore (DynamoDB, SSM; only where the app
uses botocore). The liveness and readiness
probes are left out: they would be most of the spans and say nothing. Spans leave in
batches over OTLP/HTTP to OTEL_EXPORTER_OTLP_ENDPOINT (the SDK reads the OTEL_*
variables itself); on Lambda, `flush` sends them at the end of each invocation,
before the container may be frozen.

One tracer provider per process: requests and botocore are instrumented for the
whole process, and every app built in it (a test builds many) shares them.
"""

from __future__ import annotations

import os
import sys
import threading

from flask import Flask, request
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from customers.web.request_context import ENVIRON_TRACE_ID

DEFAULT_SERVICE_NAME = "customer-api"
# Matched against the request's whole URL: /health and /health/ready, with or without a query.
PROBES = r"/health(/ready)?(\?.*)?$"

_provider: TracerProvider | None = None
_botocore_instrumented = False
_provider_lock = threading.Lock()


def provider() -> TracerProvider:
    """The process's tracer provider, made (and requests and botocore instrumented) once."""
    global _provider
    with _provider_lock:
        if _provider is None:
            # OTEL_SERVICE_NAME, when set, names the service; the SDK reads it itself.
            named = (
                {}
                if os.environ.get("OTEL_SERVICE_NAME")
                else {"service.name": DEFAULT_SERVICE_NAME}
            )
            made = TracerProvider(resource=Resource.create(named))
            made.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
            # skip_dep_check: the pins say which versions go together; the check would
            # read every installed package's metadata at each start.
            RequestsInstrumentor().instrument(tracer_provider=made, skip_dep_check=True)
            _provider = made
        return _provider


def _instrument_botocore(tracer_provider: TracerProvider) -> None:
    """Trace botocore's requests, once botocore is in use (the DynamoDB store, SSM keys).

    Not before: the instrumentation imports botocore, which the sqlite store never
    needs, and that import alone would be most of what traces add to a cold start.
    """
    global _botocore_instrumented
    with _provider_lock:
        if not _botocore_instrumented and "botocore" in sys.modules:
            from opentelemetry.instrumentation.botocore import BotocoreInstrumentor

            BotocoreInstrumentor().instrument(tracer_provider=tracer_provider, skip_dep_check=True)
            _botocore_instrumented = True


def _note_trace_id() -> None:
    """Keep the request span's trace id where the access line finds it."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        request.environ[ENVIRON_TRACE_ID] = format(context.trace_id, "032x")


def init_app(app: Flask) -> None:
    """Trace `app`'s requests. Call before anything wraps `app.wsgi_app`.

    The instrumentation's hook that starts the span goes first among the app's
    before-request hooks, so that a request refused by the key check or a rate limit
    has its span too; the one noting the trace id right after it.
    """
    tracer_provider = provider()
    _instrument_botocore(tracer_provider)  # the store and the keys are loaded by now
    FlaskInstrumentor.instrument_app(app, tracer_provider=tracer_provider, excluded_urls=PROBES)
    hooks = app.before_request_funcs.setdefault(None, [])
    hooks.insert(0, hooks.pop())  # the span's start, registered last by instrument_app
    hooks.insert(1, _note_trace_id)
    app.extensions["tracing"] = tracer_provider


def flush(app: Flask) -> None:
    """Send the spans still waiting (on Lambda, at the end of each invocation)."""
    tracer_provider: TracerProvider | None = app.extensions.get("tracing")
    if tracer_provider is not None:
        tracer_provider.force_flush()
