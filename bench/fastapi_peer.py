"""The Python peer: the customer contract as a FastAPI developer would write it, on uvicorn.

What `make bench` sets the service against besides bare Flask and Express: the
choice a Python developer would make instead. Idiomatic FastAPI in its async form
(handlers on the event loop, right for sqlite3 in memory, whose calls never wait on
I/O): pydantic models (an `EmailStr`, the business ID's check digit from
`customers.business_ids`, the one function of the service it imports), UUID ids,
RFC 3339 timestamps, a unique index on the lower-cased email, ETag and 304, keyset
paging with an opaque cursor, RFC 9457 problem documents for every error. uvicorn
with httptools and uvloop, one process, no access log. Run:
`PORT=3300 python -m bench.fastapi_peer`.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import sqlite3
import uuid
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import AfterValidator, BaseModel, ConfigDict, EmailStr, StringConstraints
from pydantic.alias_generators import to_camel

from customers.business_ids import is_valid_business_id

SCHEMA = """
CREATE TABLE customers (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    email       TEXT NOT NULL,
    email_key   TEXT NOT NULL,
    phone       TEXT,
    business_id TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    version     INTEGER NOT NULL
);
CREATE UNIQUE INDEX customers_email_key ON customers (email_key);
CREATE INDEX customers_listing ON customers (created_at, id);
"""
INSERT = (
    "INSERT INTO customers (id, name, email, phone, business_id, created_at, updated_at,"
    " version, email_key) VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?)"
)
SELECT_ONE = "SELECT * FROM customers WHERE id = ?"
FIRST_PAGE = "SELECT * FROM customers ORDER BY created_at, id LIMIT ?"
NEXT_PAGE = (
    "SELECT * FROM customers WHERE (created_at, id) > (?, ?) ORDER BY created_at, id LIMIT ?"
)


def _business_id(value: str) -> str:
    if not is_valid_business_id(value):
        raise ValueError("must be a Finnish business ID NNNNNNN-C with a valid check digit")
    return value


Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200, pattern=r"^\P{Cc}+$"),
]
Phone = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[0-9 +()\-]{1,32}$")]
BusinessId = Annotated[
    str,
    StringConstraints(strip_whitespace=True, pattern=r"^[0-9]{7}-[0-9]$"),
    AfterValidator(_business_id),
]


class CustomerIn(BaseModel):
    """A create's body: strict types, no unknown members."""

    model_config = ConfigDict(alias_generator=to_camel, extra="forbid", strict=True)

    name: Name
    email: EmailStr
    phone: Phone | None = None
    business_id: BusinessId | None = None


class CustomerOut(BaseModel):
    """A customer as the API shows it."""

    model_config = ConfigDict(alias_generator=to_camel)

    id: uuid.UUID
    name: str
    email: str
    phone: str | None
    business_id: str | None
    created_at: datetime
    updated_at: datetime


def _public(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "email": row["email"],
        "phone": row["phone"],
        "businessId": row["business_id"],
        "createdAt": row["created_at"],
        "updatedAt": row["updated_at"],
    }


def _problem(status: int, title: str, detail: str, **extra: Any) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type="application/problem+json")


def _cursor_of(row: sqlite3.Row) -> str:
    raw = json.dumps([row["created_at"], row["id"]]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _position_of(cursor: str) -> tuple[str, str]:
    try:
        position = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        position = None
    if not (isinstance(position, list) and len(position) == 2):
        raise HTTPException(400, "The cursor is not valid.")
    return str(position[0]), str(position[1])


def create_app() -> FastAPI:
    """The peer app with its own in-memory database."""
    app = FastAPI(title="customers (FastAPI peer)")
    db = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
    db.row_factory = sqlite3.Row
    db.executescript(SCHEMA)

    @app.exception_handler(HTTPException)
    async def http_problem(request: Request, exc: HTTPException) -> JSONResponse:
        return _problem(exc.status_code, HTTPStatus(exc.status_code).phrase, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": ".".join(str(part) for part in error["loc"][1:]), "message": error["msg"]}
            for error in exc.errors()
        ]
        return _problem(400, "Bad Request", "The request has invalid fields.", errors=errors)

    @app.post("/customers", status_code=201, response_model=CustomerOut)
    async def create_customer(customer: CustomerIn, response: Response) -> dict[str, Any]:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        customer_id = str(uuid.uuid4())
        try:
            db.execute(
                INSERT,
                (
                    customer_id,
                    customer.name,
                    customer.email,
                    customer.phone,
                    customer.business_id,
                    now,
                    now,
                    customer.email.lower(),
                ),
            )
        except sqlite3.IntegrityError:
            raise HTTPException(409, "Another customer already uses this email.") from None
        response.headers["Location"] = f"/customers/{customer_id}"
        response.headers["ETag"] = '"1"'
        return {
            "id": customer_id,
            **customer.model_dump(by_alias=True),
            "createdAt": now,
            "updatedAt": now,
        }

    @app.get("/customers/{customer_id}", response_model=CustomerOut)
    async def get_customer(customer_id: uuid.UUID, request: Request, response: Response) -> Any:
        row = db.execute(SELECT_ONE, (str(customer_id),)).fetchone()
        if row is None:
            raise HTTPException(404, "No customer has this id.")
        etag = f'"{row["version"]}"'
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers={"ETag": etag})
        response.headers["ETag"] = etag
        return _public(row)

    @app.get("/customers", response_model=list[CustomerOut])
    async def list_customers(
        response: Response,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
        cursor: str | None = None,
    ) -> list[dict[str, Any]]:
        if cursor is None:
            rows = db.execute(FIRST_PAGE, (limit + 1,)).fetchall()
        else:
            created_at, customer_id = _position_of(cursor)
            rows = db.execute(NEXT_PAGE, (created_at, customer_id, limit + 1)).fetchall()
        if len(rows) > limit:
            rows = rows[:limit]
            link = f"</customers?limit={limit}&cursor={_cursor_of(rows[-1])}>"
            response.headers["Link"] = f'{link}; rel="next"'
        return [_public(row) for row in rows]

    @app.get("/health")
    async def health() -> dict[str, str]:
        db.execute("SELECT 1").fetchone()
        return {"status": "ok"}

    return app


def main() -> None:
    """Serve on 127.0.0.1:PORT: one uvicorn process, httptools and uvloop, no access log."""
    import uvicorn

    uvicorn.run(
        "bench.fastapi_peer:create_app",
        factory=True,
        host="127.0.0.1",
        port=int(os.environ.get("PORT", "3300")),
        http="httptools",
        loop="uvloop",
        access_log=False,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
