"""The customers resource: one blueprint, its views in `routes`, its shapes in `schemas`."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from flask import Blueprint

if TYPE_CHECKING:
    from flask import Flask

bp = Blueprint("customers", __name__)


def init_app(app: Flask) -> None:
    """Attach the views to `bp` (by importing them) and register it on `app`."""
    import_module("customers.routes")
    import_module("customers.business")
    app.register_blueprint(bp)
