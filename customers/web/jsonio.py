"""JSON out: orjson behind Flask's JSON provider and one helper for response bodies."""

from __future__ import annotations

from typing import Any

import orjson
from flask import Response
from flask.json.provider import JSONProvider


class OrjsonProvider(JSONProvider):
    """Flask's JSON through orjson: the same output, a fraction of the cost per response."""

    def dumps(self, obj: Any, **kwargs: Any) -> str:
        return orjson.dumps(obj).decode()

    def loads(self, s: str | bytes, **kwargs: Any) -> Any:
        return orjson.loads(s)


def json_response(
    payload: Any, status: int = 200, *, mimetype: str = "application/json"
) -> Response:
    """`payload` serialized once with orjson, as a response."""
    return Response(orjson.dumps(payload), status=status, mimetype=mimetype)
