#!/usr/bin/env bash
# `npm run bench [-- NAME…]`: the benchmarks under bench/ (each prints its own figures). Not part
# of the tests: figures are measured, never asserted.
set -euo pipefail
cd "$(dirname "$0")/.."
npm run --silent build
names=("$@")
[ ${#names[@]} -gt 0 ] || names=($(ls bench/*.mjs | xargs -n1 basename | sed "s/\.mjs$//"))
for name in "${names[@]}"; do
  echo "== bench/$name.mjs"
  node "bench/$name.mjs"
done
