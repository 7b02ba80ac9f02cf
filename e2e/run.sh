#!/usr/bin/env bash
# End-to-end checks (`make e2e`). On free loopback ports: the register stub and two
# instances of the service (python app.py, in-memory store), one open and one with
# API_KEYS. Then, against both: the Postman collection through newman (and once more
# against the keyed one without a key, which must stop at once saying so) and the OpenAPI
# document as served, linted by Spectral and Redocly; clients generated from that
# document by tools nobody here wrote, each run against the open instance: TypeScript
# (openapi-typescript and openapi-fetch, under tsc --strict) and Java (openapi-generator);
# against the keyed one, the docs page in Chromium (authorize with the key, Try it out)
# and Schemathesis with every check; last, the commands of the README and docs/ against `make run`
# (e2e/readme_walk.py). Every server is stopped on exit, whatever happened; the exit
# status is non-zero when any check failed.
set -euo pipefail
cd "$(dirname "$0")/.."

# Three distinct free ports, all held until all are known.
read -r OPEN_PORT KEYED_PORT REGISTER_PORT < <(python3 -c '
import socket
socks = [socket.socket() for _ in range(3)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))
')
OPEN_URL="http://127.0.0.1:$OPEN_PORT"
KEYED_URL="http://127.0.0.1:$KEYED_PORT"
API_KEY=$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')
LOGS=$(mktemp -d)
pids=()

cleanup() {
  local status=$?
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  if [ "$status" -ne 0 ]; then
    echo "--- register stub log"; cat "$LOGS/register.log"
    for name in open keyed; do
      echo "--- $name service log (last 40 lines)"; tail -n 40 "$LOGS/$name.log"
    done
  fi
  rm -rf "$LOGS"
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

python3 e2e/register_stub.py "$REGISTER_PORT" >"$LOGS/register.log" 2>&1 &
pids+=($!)

# Only what this run sets: no rate limit, no CORS, the in-memory store; keys as given.
serve() {
  local name=$1 port=$2 keys=$3
  env -u SQLITE_PATH -u API_KEYS -u API_KEYS_SSM_PARAMETER -u REQUIRE_API_KEYS \
    -u RATE_LIMIT -u CORS_ORIGINS -u AWS_ENDPOINT_URL \
    ${keys:+API_KEYS="$keys"} \
    PORT="$port" HOST=127.0.0.1 WORKERS=1 CUSTOMER_STORE=sqlite LOG_LEVEL=INFO \
    BUSINESS_API_URL="http://127.0.0.1:$REGISTER_PORT" \
    .venv/bin/python app.py >"$LOGS/$name.log" 2>&1 &
  pids+=($!)
}
serve open "$OPEN_PORT" ""
serve keyed "$KEYED_PORT" "$API_KEY"

# Up when /health answers 200 on both and the stub accepts connections; give up after 30 s.
python3 - "$OPEN_URL/health" "$KEYED_URL/health" "$REGISTER_PORT" <<'EOF' || { echo "e2e: the servers did not start"; exit 1; }
import socket, sys, time, urllib.request
*healths, register_port = sys.argv[1:]
deadline = time.monotonic() + 30
waiting = list(healths)
while waiting and time.monotonic() < deadline:
    try:
        socket.create_connection(("127.0.0.1", int(register_port)), timeout=1).close()
        with urllib.request.urlopen(waiting[0], timeout=1) as response:
            if response.status == 200:
                waiting.pop(0)
    except OSError:
        time.sleep(0.1)
sys.exit(1 if waiting else 0)
EOF
echo "e2e: services on $OPEN_URL (open) and $KEYED_URL (API_KEYS), register stub on port $REGISTER_PORT"

failed=()

# The Postman collection, against each instance; the keyed run sends the key from the
# collection's auth and checks that a request without one gets 401.
npx --no-install newman run e2e/customer-api.postman_collection.json \
  --environment e2e/customer-api.localhost.postman_environment.json \
  --env-var "baseUrl=$OPEN_URL" --timeout-request 20000 || failed+=("newman (open)")
npx --no-install newman run e2e/customer-api.postman_collection.json \
  --environment e2e/customer-api.localhost.postman_environment.json \
  --env-var "baseUrl=$KEYED_URL" --env-var "apiKey=$API_KEY" \
  --timeout-request 20000 || failed+=("newman (API_KEYS)")
# And against the keyed instance without apiKey: one failure, saying to set it, and the
# run stops there instead of failing every request after it.
if npx --no-install newman run e2e/customer-api.postman_collection.json \
  --environment e2e/customer-api.localhost.postman_environment.json \
  --env-var "baseUrl=$KEYED_URL" --env-var "apiKey=" --timeout-request 20000 \
  --reporters json --reporter-json-export "$LOGS/newman-no-key.json"; then
  failed+=("newman (API_KEYS, no apiKey): the run passed")
else
  python3 - "$LOGS/newman-no-key.json" <<'EOF_CHECK' || failed+=("newman (API_KEYS, no apiKey)")
import json, sys
failures = json.load(open(sys.argv[1]))["run"]["failures"]
messages = [failure["error"]["message"] for failure in failures]
print("e2e: newman without apiKey against keys:", messages)
sys.exit(0 if len(messages) == 1 and messages[0].startswith("set apiKey:") else 1)
EOF_CHECK
fi

# The document as each instance serves it, through both linters: any finding fails.
export REDOCLY_TELEMETRY=off REDOCLY_SUPPRESS_UPDATE_NOTICE=true
for name in open keyed; do
  url=$OPEN_URL; [ "$name" = keyed ] && url=$KEYED_URL
  document="$LOGS/openapi-$name.json"
  python3 -c 'import sys, urllib.request; sys.stdout.buffer.write(urllib.request.urlopen(sys.argv[1], timeout=10).read())' \
    "$url/openapi.json" >"$document"
  echo "e2e: Spectral (spectral:oas) on the document of the $name instance"
  npx --no-install spectral lint --ruleset e2e/spectral.yaml --fail-severity hint "$document" \
    || failed+=("spectral ($name)")
  echo "e2e: Redocly (recommended) on the document of the $name instance"
  # Redocly exits 0 on warnings alone: a warning is a finding too.
  redocly_status=0
  report=$(npx --no-install redocly lint --config e2e/redocly.yaml "$document" 2>&1) || redocly_status=$?
  echo "$report"
  if [ "$redocly_status" -ne 0 ] || grep -Eq "You have [0-9]+ warnings?" <<<"$report"; then
    failed+=("redocly ($name)")
  fi
done

# Generated clients build in build/e2e (ignored by git), beside node_modules for node.
rm -rf build/e2e
mkdir -p build/e2e/typescript build/e2e/java/classes

# A TypeScript client as a developer makes one: openapi-typescript with its default
# settings, openapi-fetch, tsc --strict. It must type-check a patch of the name alone,
# and that patch must keep the phone (e2e/typescript/patch_keeps_phone.mts).
echo "e2e: a TypeScript client (openapi-typescript, openapi-fetch, tsc --strict)"
cp e2e/typescript/* build/e2e/typescript/
if npx --no-install openapi-typescript "$LOGS/openapi-open.json" -o build/e2e/typescript/api.d.ts \
  && npx --no-install tsc --strict -p build/e2e/typescript \
  && BASE_URL="$OPEN_URL" node build/e2e/typescript/out/patch_keeps_phone.mjs; then
  :
else
  failed+=("typescript client")
fi

# openapi-generator's Java client (library `native`: Java 11's HttpClient and Jackson),
# compiled by javac against Jackson as the generator's jar bundles it and Debian's
# Jakarta annotations; include=business must come back as CustomerWithBusiness with the
# company (e2e/java/IncludeBusinessCheck.java).
echo "e2e: a Java client (openapi-generator, java/native)"
generator_jar=$(.venv/bin/python -c 'import openapi_generator_cli, pathlib; print(pathlib.Path(openapi_generator_cli.__file__).parent / "openapi-generator.jar")')
java_classpath="$generator_jar:/usr/share/java/jakarta-annotation-api.jar"
if java -jar "$generator_jar" generate --input-spec "$LOGS/openapi-open.json" \
    --generator-name java --library native --output build/e2e/java/client \
    --additional-properties=openApiNullable=false,annotationLibrary=none,useJakartaEe=true,hideGenerationTimestamp=true \
    --additional-properties=invokerPackage=fi.customerapi.client,apiPackage=fi.customerapi.client.api,modelPackage=fi.customerapi.client.model \
    >"$LOGS/java-generate.log" 2>&1 \
  && find build/e2e/java/client/src/main/java -name '*.java' >build/e2e/java/sources.txt \
  && echo e2e/java/IncludeBusinessCheck.java >>build/e2e/java/sources.txt \
  && javac -nowarn -encoding UTF-8 -d build/e2e/java/classes -cp "$java_classpath" @build/e2e/java/sources.txt \
  && java -cp "build/e2e/java/classes:$java_classpath" IncludeBusinessCheck "$OPEN_URL"; then
  :
else
  tail -n 20 "$LOGS/java-generate.log"
  failed+=("java client")
fi

# The docs page in Chromium, against the instance with keys.
BASE_URL="$KEYED_URL" API_KEY="$API_KEY" node e2e/docs_check.mjs || failed+=("docs page")

# Schemathesis with every check, "schema-valid request rejected" among them, against the
# instance with keys, taught the rules the document can state only in words
# (e2e/schemathesis_hooks.py) and which statuses answer state rather than form
# (e2e/schemathesis.toml). A fixed seed, so a failure can be replayed.
echo "e2e: Schemathesis, every check, against the instance with keys"
SCHEMATHESIS_HOOKS=e2e.schemathesis_hooks PYTHONPATH=. .venv/bin/schemathesis \
  --config-file e2e/schemathesis.toml run "$KEYED_URL/openapi.json" \
  --header "X-API-Key: $API_KEY" --checks all --max-examples 50 --seed 24 \
  --generation-database none --no-color || failed+=("schemathesis")

# The commands of the README and docs/, as written, against `make run`.
python3 e2e/readme_walk.py || failed+=("README walk")

if [ "${#failed[@]}" -ne 0 ]; then
  echo "e2e: FAILED: ${failed[*]}"
  exit 1
fi
echo "e2e: all checks passed"
