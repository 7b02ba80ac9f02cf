"""The customers resource: one blueprint, its views in `routes`, its shapes in `schemas`."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from flask import Blueprint

if TYPE_CHECKING:
    from flask import Flask

bp = Blueprint("customers", __name__)


def init_app(app: Flask) -> None:
    """Attach the views and CLI commands to `bp` (by importing them) and register it."""
    import_module("customers.routes")
    import_module("customers.business")
    import_module("customers.cli")  # `flask customers import|export`
    app.register_blueprint(bp)
