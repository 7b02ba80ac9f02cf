"""Prometheus over a real server with two workers: after known traffic, /metrics on
METRICS_PORT holds exactly its counts, added up over both workers."""

from __future__ import annotations

from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.served import ServerProcess, free_port

CUSTOMER_ROUTE = "/customers/<customer_id>"


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the exposition, by name and labels."""
    text = requests.get(url, timeout=10).text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def labels(**given: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(given.items()))


def multiproc_directory(temporary: Path) -> Path:
    """The one directory the service made for its workers' values, under its TMPDIR."""
    (directory,) = temporary.glob("customer-api-metrics-*")
    return directory


def test_two_workers_counts_add_up_on_the_metrics_port(tmp_path: Path) -> None:
    # GIVEN two workers on a file store, metrics on a port of their own
    metrics_port = free_port()
    temporary = tmp_path / "tmp"
    temporary.mkdir()
    server = ServerProcess(
        {
            "TMPDIR": str(temporary),
            "SQLITE_PATH": str(tmp_path / "customers.db"),
            "WORKERS": "2",
            "METRICS_PORT": str(metrics_port),
        }
    )
    metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    try:
        directory = multiproc_directory(temporary)

        # WHEN known traffic arrives, each request on a connection of its own, so that
        # the kernel spreads them over both workers
        def create(serial: int) -> str:
            response = requests.post(
                f"{server.url}/customers",
                json={"name": f"C {serial}", "email": f"c{serial}@example.com"},
                headers={"Idempotency-Key": f"key-{serial}"},
                timeout=10,
            )
            assert response.status_code == 201
            customer_id: str = response.json()["id"]
            return customer_id

        created = [create(serial) for serial in range(20)]
        replayed = [create(serial) for serial in range(5)]  # the same keys again
        assert replayed == created[:5]
        for customer_id in created:
            assert requests.get(f"{server.url}/customers/{customer_id}", timeout=10).ok
        for serial in range(7):
            missing = requests.get(f"{server.url}/customers/missing-{serial}", timeout=10)
            assert missing.status_code == 404
        for serial in range(3):
            assert requests.get(f"{server.url}/no/such/{serial}", timeout=10).status_code == 404
        assert requests.get(f"{server.url}/metrics", timeout=10).status_code == 404

        # THEN both workers counted, and the sums are exact
        workers = {path.name.rpartition("_")[2] for path in directory.glob("counter_*.db")}
        assert len(workers) == 2, workers
        samples = scrape(metrics_url)
        requests_total = "customer_api_requests_total"
        get = {"method": "GET", "route": CUSTOMER_ROUTE}
        assert samples[(requests_total, labels(**get, status_class="2xx"))] == 20
        assert samples[(requests_total, labels(**get, status_class="4xx"))] == 7
        post = {"method": "POST", "route": "/customers", "status_class": "2xx"}
        assert samples[(requests_total, labels(**post))] == 25
        unmatched = {"method": "GET", "route": "unmatched", "status_class": "4xx"}
        assert samples[(requests_total, labels(**unmatched))] == 4  # /metrics included
        # (plus the health checks ServerProcess made while the server started)
        histogram = "customer_api_request_duration_seconds_count"
        assert samples[(histogram, labels(**post))] == 25
        idempotency = "customer_api_idempotency_total"
        assert samples[(idempotency, labels(outcome="new"))] == 20
        assert samples[(idempotency, labels(outcome="replayed"))] == 5
        # No label holds a path, an id or a key.
        every_label = {value for _, pairs in samples for _, value in pairs}
        assert not any(customer_id in value for customer_id in created for value in every_label)
        assert not any("missing" in value or "key-" in value for value in every_label)
    finally:
        assert server.stop() == 0
    # AND the workers' directory is gone with the service
    assert not directory.exists()
