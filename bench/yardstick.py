"""The yardstick: bare Flask answering the service's routes from a dict, on granian.

It is what the service's numbers are divided by. Same server, but through its WSGI
interface (one worker, `config.SERVER_THREADS` threads) rather than the service's ASGI
bridge; same routes and similar bodies, but no validation, no database, no logging,
no hooks, no slow-client guarantee: whatever the service is slower by is the price of
what it does on top of Flask. Run: `python -m bench.yardstick`.
"""

from __future__ import annotations

import itertools
import os
import threading
import uuid
from datetime import UTC, datetime
from typing import Any

from flask import Flask, Response, abort, jsonify, request

from customers.config import SERVER_THREADS

# What the service answers for the stand-in register's company, give or take.
BUSINESS: dict[str, Any] = {
    "businessId": "0112038-9",
    "name": "Revontuli Software Oy",
    "companyForm": {"code": "16", "description": "Limited company"},
    "mainBusinessLine": {"code": "62010", "description": "Computer programming activities"},
    "registrationDate": "2018-03-12",
    "status": "active",
    "website": "www.revontulisoftware.fi",
    "addresses": [
        {"type": "visiting", "street": "Revontulentie 6 A 7", "postCode": "02100", "city": "ESPOO"},
        {"type": "postal", "street": "PL 125", "postCode": "02101", "city": "ESPOO"},
    ],
}


def create_app() -> Flask:
    """The yardstick app; granian calls this in its worker (`factory=True`)."""
    app = Flask(__name__)
    customers: dict[str, dict[str, Any]] = {}
    # The service serialises writes through its store's lock; so does the yardstick.
    lock = threading.Lock()

    @app.post("/customers")
    def create_customer() -> tuple[Response, int, dict[str, str]]:
        body = request.get_json()
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        customer = {
            "id": str(uuid.uuid4()),
            **body,
            "createdAt": now,
            "updatedAt": now,
        }
        with lock:
            customers[customer["id"]] = customer
        return jsonify(customer), 201, {"Location": f"/customers/{customer['id']}"}

    @app.get("/customers")
    def list_customers() -> Response:
        limit = int(request.args.get("limit", 100))
        with lock:
            page = list(itertools.islice(customers.values(), limit))
        return jsonify(page)

    @app.get("/customers/<customer_id>")
    def get_customer(customer_id: str) -> Response:
        customer = customers.get(customer_id)
        if customer is None:
            abort(404)
        return jsonify(customer)

    @app.get("/businesses/<business_id>")
    def get_business(business_id: str) -> Response:
        return jsonify({**BUSINESS, "businessId": business_id})

    @app.get("/health")
    def health() -> Response:
        return jsonify({"status": "ok"})

    return app


def main() -> None:
    """Serve on 127.0.0.1:PORT the way server.main serves the service."""
    from granian import Granian
    from granian.constants import Interfaces

    Granian(
        "bench.yardstick:create_app",
        factory=True,
        interface=Interfaces.WSGI,
        address="127.0.0.1",
        port=int(os.environ.get("PORT", "3100")),
        workers=1,
        blocking_threads=SERVER_THREADS,
        log_access=False,
    ).serve()


if __name__ == "__main__":
    main()
