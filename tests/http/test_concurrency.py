"""Many threads through one app: no lost rows, no cross-talk, one winner per email."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from flask import Flask

THREADS = 16
PER_THREAD = 25


def test_threads_creating_and_reading_lose_nothing_and_see_only_their_own(app: Flask) -> None:
    start = threading.Barrier(THREADS)

    def work(worker: int) -> list[dict[str, Any]]:
        client = app.test_client()
        start.wait()
        mine = []
        for serial in range(PER_THREAD):
            body = {"name": f"w{worker} n{serial}", "email": f"w{worker}-{serial}@example.com"}
            created = client.post(
                "/customers", json=body, headers={"X-Request-ID": f"w{worker}-{serial}"}
            )
            assert created.status_code == 201
            assert created.headers["X-Request-ID"] == f"w{worker}-{serial}"
            record = created.get_json()
            assert (record["name"], record["email"]) == (body["name"], body["email"])
            fetched = client.get(f"/customers/{record['id']}")
            assert fetched.get_json() == record
            mine.append(record)
        return mine

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        made = [record for result in pool.map(work, range(THREADS)) for record in result]

    listed = app.test_client().get("/customers?limit=500").get_json()
    assert len(made) == THREADS * PER_THREAD == len(listed)
    assert sorted(r["id"] for r in listed) == sorted(r["id"] for r in made)


def test_exactly_one_thread_wins_an_email(app: Flask) -> None:
    start = threading.Barrier(THREADS)

    def attempt(worker: int) -> int:
        client = app.test_client()
        start.wait()
        email = "contested@example.com" if worker % 2 else "CONTESTED@example.com"
        body = {"name": f"w{worker}", "email": email}
        return client.post("/customers", json=body).status_code

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        statuses = list(pool.map(attempt, range(THREADS)))
    assert statuses.count(201) == 1
    assert statuses.count(409) == THREADS - 1
    assert len(app.test_client().get("/customers").get_json()) == 1


def test_concurrent_patches_of_one_customer_leave_a_consistent_record(app: Flask) -> None:
    client = app.test_client()
    created = client.post("/customers", json={"name": "Start", "email": "s@example.com"})
    url = f"/customers/{created.get_json()['id']}"
    start = threading.Barrier(THREADS)

    def patch(worker: int) -> tuple[int, str]:
        local = app.test_client()
        start.wait()
        response = local.patch(url, json={"name": f"by {worker}", "phone": str(worker)})
        return response.status_code, response.headers["ETag"]

    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        results = list(pool.map(patch, range(THREADS)))
    assert all(status == 200 for status, _ in results)
    assert sorted(int(etag.strip('"')) for _, etag in results) == list(range(2, THREADS + 2))
    final = client.get(url)
    assert final.headers["ETag"] == f'"{THREADS + 1}"'
    body = final.get_json()
    assert body["name"] == f"by {body['phone']}"
