"""A local stand-in of the business register for manual runs and the end-to-end checks.

    python3 e2e/register_stub.py 8081     # then BUSINESS_API_URL=http://127.0.0.1:8081

It knows one company, 0112038-9 (the register's sample body); any other ID gets the
register's empty answer, which the service turns into a 404. Standard library only.
"""

from __future__ import annotations

import sys
from pathlib import Path

KNOWN = frozenset({"0112038-9"})


def main() -> None:
    # Run as a script from anywhere: the stand-in lives in the repository's bench package.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench.upstream import RegisterStandIn

    port = int(sys.argv[1]) if len(sys.argv) > 1 else 8081
    server = RegisterStandIn(port=port, known=KNOWN)
    print(f"register stand-in on http://127.0.0.1:{port} (knows {', '.join(sorted(KNOWN))})")
    sys.stdout.flush()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
