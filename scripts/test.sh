#!/usr/bin/env bash
# The test command (README, .ci/run): installs what the tests need, then lint, typecheck, and every
# test — unit tests and the integration tests against real Podman, systemd, Postgres and Mosquitto.
set -euo pipefail
cd "$(dirname "$0")/.."

step() { printf '\n== %s\n' "$*"; }

step 'system packages and services'
bash scripts/test-env.sh

step 'npm packages'
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  npm ci --no-audit --no-fund
fi

step 'build'
npm run --silent -w @podfleet/controller prisma:generate
npx tsc -b

step 'lint and format'
for script in scripts/*.sh .ci/run; do bash -n "$script"; done
npx eslint .
npx prettier --check . --log-level warn

step 'typecheck (tests and the dashboard browser modules included)'
npx tsc -p tsconfig.check.json
npx tsc -p packages/controller/dashboard-assets

step 'tests'
npx vitest run "$@"
