#!/usr/bin/env bash
# `npm run demo`: the controller on the embedded default (no Postgres or broker needed), a
# simulated fleet of real agents, and a real rollout with a canary, watched live.
# Env: DEMO_DEVICES (300), PORT (8080), PODFLEET_MQTT_PORT (18830), DEMO_EXIT=1 to stop at the end.
set -euo pipefail
cd "$(dirname "$0")/.."

DEVICES=${DEMO_DEVICES:-300}
LAB=$((DEVICES / 5))
BERLIN=$((DEVICES - LAB))
export PODFLEET_DATA=${PODFLEET_DATA:-.podfleet-demo}
export PORT=${PORT:-8080}
export PODFLEET_MQTT_PORT=${PODFLEET_MQTT_PORT:-18830}
# The simulated fleet's images are in no registry: roll tags out as given, unresolved.
export PODFLEET_RESOLVE_TAGS=off
export PODFLEET_URL=http://127.0.0.1:$PORT
export LOG_LEVEL=${LOG_LEVEL:-warn}
podfleet() { node packages/controller/bin/podfleet.js "$@"; }
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

say "install and build"
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi
npm run --silent build

rm -rf "$PODFLEET_DATA"
mkdir -p "$PODFLEET_DATA"
pids=()
cleanup() { for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

say "controller on $PODFLEET_URL (embedded store and broker under $PODFLEET_DATA)"
# Started directly, not through the podfleet function: $! must be node itself for the cleanup.
node packages/controller/bin/podfleet.js serve > "$PODFLEET_DATA/controller.log" 2>&1 &
pids+=($!)
for _ in $(seq 200); do
  node -e 'fetch(process.argv[1]).then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))' \
    "$PODFLEET_URL/healthz" && [ -s "$PODFLEET_DATA/admin-token" ] && break
  kill -0 "${pids[0]}" 2>/dev/null || { cat "$PODFLEET_DATA/controller.log"; exit 1; }
  sleep 0.1
done
# The token stays in its file (serve prints only where it is): the dashboard asks for it.
echo "dashboard: $PODFLEET_URL/  (admin token: cat $PODFLEET_DATA/admin-token)"

say "a service, two groups (lab is pinned), $DEVICES devices"
podfleet services apply -f examples/demo/web.yaml
podfleet groups create berlin --selector site=berlin --priority 1
podfleet groups create lab --selector site=lab --priority 10
podfleet assign berlin web
podfleet assign lab web
podfleet pin lab web "registry.example/acme/web@sha256:$(printf 'a%.0s' $(seq 64))"
ids() { for i in $(seq "$1" "$2"); do printf 'sim-%04d ' "$i"; done; }
# shellcheck disable=SC2046
podfleet devices add $(ids 0 $((BERLIN - 1))) --labels site=berlin >/dev/null
# shellcheck disable=SC2046
podfleet devices add $(ids "$BERLIN" $((DEVICES - 1))) --labels site=lab >/dev/null
podfleet groups ls

say "podfleet-agent sim: $DEVICES real agents on in-memory hosts, 3% of them fail new images"
node packages/agent/bin/podfleet-agent.js sim -n "$DEVICES" --broker "mqtt://127.0.0.1:$PODFLEET_MQTT_PORT" \
  --key "$PODFLEET_DATA/controller-public-key.pem" --fail-rate 0.03 --settle 2 --progress 5 \
  > "$PODFLEET_DATA/sim.log" 2>&1 &
pids+=($!)
for _ in $(seq 600); do
  applied=$(podfleet devices ls --json | node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).filter(d=>d.appliedGeneration>0).length))')
  printf '\r%s of %s devices run their first manifest' "$applied" "$DEVICES"
  [ "$applied" -ge "$DEVICES" ] && break
  sleep 1
done
echo

say "the plan: web 1.0 → 1.1 on group berlin (lab keeps its pin)"
podfleet rollout plan web registry.example/acme/web:1.1 --group berlin --canary 5 --batch-size 25% | head -8
echo "…"

say "rollout: canary of 5, then batches of 25%, up to 10% failures, live"
status=0
podfleet rollout start web registry.example/acme/web:1.1 --group berlin --canary 5 --batch-size 25% \
  --max-failures 10% --health-timeout 30s --watch || status=$?

say "done (exit $status): dashboard $PODFLEET_URL/ — logs in $PODFLEET_DATA"
if [ "${DEMO_EXIT:-0}" != 1 ]; then
  echo "Ctrl-C stops the controller and the simulated fleet."
  wait "${pids[0]}"
fi
exit "$status"
