#!/usr/bin/env bash
# End-to-end: the service (python app.py) and the register stand-in on free loopback
# ports, then the Postman collection through newman and the docs page in Chromium.
set -euo pipefail
cd "$(dirname "$0")/.."

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
SERVICE_PORT=$(free_port)
REGISTER_PORT=$(free_port)
LOGS=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$LOGS"
}
trap cleanup EXIT

python3 e2e/register_stub.py "$REGISTER_PORT" >"$LOGS/register.log" 2>&1 &
pids+=($!)
PORT=$SERVICE_PORT HOST=127.0.0.1 BUSINESS_API_URL="http://127.0.0.1:$REGISTER_PORT" \
  .venv/bin/python app.py >"$LOGS/service.log" 2>&1 &
pids+=($!)

BASE_URL="http://127.0.0.1:$SERVICE_PORT"
for _ in $(seq 100); do
  curl -fs "$BASE_URL/health" >/dev/null 2>&1 && break
  sleep 0.1
done
curl -fs "$BASE_URL/health" >/dev/null || { echo "the service did not start:"; cat "$LOGS/service.log"; exit 1; }

status=0
npx --no-install newman run e2e/customer-api.postman_collection.json \
  --env-var "baseUrl=$BASE_URL" --bail || status=1
BASE_URL="$BASE_URL" node e2e/docs_check.mjs || status=1
if [ "$status" -ne 0 ]; then
  echo "--- service log (tail)"; tail -n 40 "$LOGS/service.log"
fi
exit "$status"
