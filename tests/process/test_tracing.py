"""Traces over a real server: OTLP over HTTP to a receiver in the test, decoded with
opentelemetry-proto; and with tracing off, nothing of OpenTelemetry is imported."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import requests
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
)
from opentelemetry.proto.trace.v1.trace_pb2 import Span
from pytest_httpserver import HTTPServer

from tests.served import ROOT, ServerProcess
from tests.upstream_samples import company_found_body

BUSINESS_ID = "0112038-9"
TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN_ID = "00f067aa0ba902b7"


class OtlpReceiver:
    """An OTLP/HTTP endpoint on loopback keeping every span it is sent, with its service."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, Span]] = []
        received = self.spans

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                export = ExportTraceServiceRequest()
                export.ParseFromString(body)
                for resource_spans in export.resource_spans:
                    service = next(
                        attribute.value.string_value
                        for attribute in resource_spans.resource.attributes
                        if attribute.key == "service.name"
                    )
                    for scope_spans in resource_spans.scope_spans:
                        received.extend((service, span) for span in scope_spans.spans)
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                """Quiet."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def wait_for(self, count: int, timeout: float = 15) -> list[tuple[str, Span]]:
        deadline = time.monotonic() + timeout
        while len(self.spans) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.spans)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    otlp = OtlpReceiver()
    yield otlp
    otlp.close()


def test_a_lookup_is_traced_into_the_register_and_named_in_the_access_line(
    receiver: OtlpReceiver, httpserver: HTTPServer, tmp_path: Path
) -> None:
    # GIVEN the service exporting traces to the receiver, the register a local stand-in
    httpserver.expect_request("/companies").respond_with_json(company_found_body(BUSINESS_ID))
    output = tmp_path / "served.log"
    server = ServerProcess(
        {
            "WORKERS": "1",
            "LOG_LEVEL": "INFO",
            "BUSINESS_API_URL": httpserver.url_for("/"),
            "OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url,
            "OTEL_SERVICE_NAME": "customer-api-under-test",
            "OTEL_BSP_SCHEDULE_DELAY": "100",
        },
        output=output,
    )
    try:
        # WHEN a lookup comes in as part of the caller's trace
        response = requests.get(
            f"{server.url}/businesses/{BUSINESS_ID}",
            headers={
                "traceparent": f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01",
                "X-Request-ID": "traced-lookup",
            },
            timeout=10,
        )
        assert response.status_code == 200
        spans = receiver.wait_for(2)
    finally:
        assert server.stop() == 0

    # THEN the request's span continues the caller's trace, the register call is its child
    assert {service for service, _ in spans} == {"customer-api-under-test"}
    by_kind = {span.kind: span for _, span in spans}
    assert sorted(by_kind) == [Span.SPAN_KIND_SERVER, Span.SPAN_KIND_CLIENT], spans
    request_span = by_kind[Span.SPAN_KIND_SERVER]
    register_span = by_kind[Span.SPAN_KIND_CLIENT]
    assert request_span.name == "GET /businesses/<business_id>"
    assert request_span.trace_id.hex() == TRACE_ID
    assert request_span.parent_span_id.hex() == PARENT_SPAN_ID
    assert register_span.trace_id.hex() == TRACE_ID
    assert register_span.parent_span_id == request_span.span_id
    # No span for the health checks the server was polled with while it started.
    assert len(spans) == 2
    # AND the access line names the trace beside the request id
    lines = [json.loads(line) for line in output.read_text().splitlines() if line.startswith("{")]
    (access,) = [
        line
        for line in lines
        if line.get("event") == "request" and line.get("request_id") == "traced-lookup"
    ]
    assert access["trace_id"] == TRACE_ID
    assert list(access).index("trace_id") == list(access).index("request_id") + 1


def test_with_tracing_off_nothing_of_opentelemetry_or_prometheus_is_imported() -> None:
    # The app built as a server and as Lambda build it, then the modules loaded.
    script = (
        "import sys, app; app.create_app(); import customers.aws.lambda_handler; "
        "print(sorted({m.partition('.')[0] for m in sys.modules "
        "if m.startswith(('opentelemetry', 'prometheus_client'))}))"
    )
    environ = {"PATH": "/usr/bin:/bin", "HOME": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"
