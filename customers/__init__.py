"""customer-api: a REST service for customer records.

The resources (blueprints and their shapes) sit at this level; beneath it, `web/`
holds the request plumbing every route shares, `stores/` the store implementations,
`aws/` the Lambda adapters, and `register/` the business register's own shapes.
`app.py` (beside this package) is the factory that puts them together.
"""
