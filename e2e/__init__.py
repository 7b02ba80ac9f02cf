"""End-to-end checks: the Postman collection, the docs page, the register stand-in."""
