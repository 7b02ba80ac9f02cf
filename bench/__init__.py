"""`make bench`: throughput, latency, memory and start-up of the service against a yardstick.

Run as modules from the repository root (`python -m bench.run`, `python -m bench.profile`),
so that the service's own modules (`app`, `customers`) import without path tricks.
"""
