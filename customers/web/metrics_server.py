"""/metrics for every worker at once, served by the main process on HOST:METRICS_PORT.

prometheus_client's multiprocess mode: each worker writes its values to files in
PROMETHEUS_MULTIPROC_DIR, and the collector here adds them up at each scrape. The
service manages that directory: a fresh one made at each start before any worker
exists, so no count of an earlier run is added in, and removed at the stop. It is
set before prometheus_client is imported anywhere (this module imports it only in
`serve`): the library picks its way of keeping values at import, and granian's
workers, forked from this process, would inherit the single-process one.
"""

from __future__ import annotations

import os
import shutil
import tempfile

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


def prepare_directory() -> str:
    """A fresh, empty directory for the workers' values, named in PROMETHEUS_MULTIPROC_DIR
    for the workers to inherit; an operator's own value is replaced."""
    directory = tempfile.mkdtemp(prefix="customer-api-metrics-")
    os.environ[MULTIPROC_ENV] = directory
    return directory


def remove_directory(directory: str) -> None:
    """Remove the workers' values once the service has stopped."""
    shutil.rmtree(directory, ignore_errors=True)


def serve(host: str, port: int) -> None:
    """Serve the sum of every worker's values on host:port, from a thread of this process."""
    from prometheus_client import CollectorRegistry, multiprocess, start_http_server

    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)
    start_http_server(port, addr=host, registry=registry)
