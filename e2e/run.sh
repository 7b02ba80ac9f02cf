#!/usr/bin/env bash
# End-to-end checks (`make e2e`): the register stub and the service (python app.py, in-memory
# store) on free loopback ports, then the Postman collection through newman and the docs
# page in Chromium. Both servers are stopped on exit, whatever happened; the exit status is
# non-zero when any check failed.
set -euo pipefail
cd "$(dirname "$0")/.."

# Two distinct free ports, both held until both are known.
read -r SERVICE_PORT REGISTER_PORT < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
')
BASE_URL="http://127.0.0.1:$SERVICE_PORT"
LOGS=$(mktemp -d)
pids=()

cleanup() {
  local status=$?
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "$status" -ne 0 ]; then
    echo "--- register stub log"; cat "$LOGS/register.log"
    echo "--- service log (last 40 lines)"; tail -n 40 "$LOGS/service.log"
  fi
  rm -rf "$LOGS"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

python3 e2e/register_stub.py "$REGISTER_PORT" >"$LOGS/register.log" 2>&1 &
pids+=($!)

# Only what this run sets: no keys, no rate limit, no CORS, the in-memory store.
env -u SQLITE_PATH -u API_KEYS -u API_KEYS_SSM_PARAMETER -u REQUIRE_API_KEYS \
  -u RATE_LIMIT -u CORS_ORIGINS -u AWS_ENDPOINT_URL \
  PORT="$SERVICE_PORT" HOST=127.0.0.1 WORKERS=1 CUSTOMER_STORE=sqlite LOG_LEVEL=INFO \
  BUSINESS_API_URL="http://127.0.0.1:$REGISTER_PORT" \
  .venv/bin/python app.py >"$LOGS/service.log" 2>&1 &
pids+=($!)

# Up when /health answers 200 and the stub accepts connections; give up after 30 s.
python3 - "$BASE_URL/health" "$REGISTER_PORT" <<'EOF' || { echo "e2e: the servers did not start"; exit 1; }
import socket, sys, time, urllib.request
health, register_port = sys.argv[1], int(sys.argv[2])
deadline = time.monotonic() + 30
while time.monotonic() < deadline:
    try:
        socket.create_connection(("127.0.0.1", register_port), timeout=1).close()
        with urllib.request.urlopen(health, timeout=1) as response:
            if response.status == 200:
                sys.exit(0)
    except OSError:
        time.sleep(0.1)
sys.exit(1)
EOF
echo "e2e: service on $BASE_URL, register stub on http://127.0.0.1:$REGISTER_PORT"

failed=()
npx --no-install newman run e2e/customer-api.postman_collection.json \
  --env-var "baseUrl=$BASE_URL" --timeout-request 20000 || failed+=(newman)
BASE_URL="$BASE_URL" node e2e/docs_check.mjs || failed+=("docs page")

if [ "${#failed[@]}" -ne 0 ]; then
  echo "e2e: FAILED: ${failed[*]}"
  exit 1
fi
echo "e2e: all checks passed"
