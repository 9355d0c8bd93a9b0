#!/usr/bin/env bash
# The OpenAPI-driven fuzz test (tests/MetaCompute.Api.Tests/Fuzzing) at length: ROUNDS walks of every operation of the
# document, one request at a time (each request's table changes checked), then the same ROUNDS again with CONCURRENCY
# requests at a time (answers and the ledger's no-overlap invariant checked). Prints each run's request count, time and
# statuses. Everything runs against the tests' throwaway PostgreSQL and stops by itself.
# Usage: bench/fuzz.sh [rounds=3] [concurrency=8]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-3}"; concurrency="${2:-8}"
run() {
  METACOMPUTE_FUZZ_ROUNDS="$1" METACOMPUTE_FUZZ_CONCURRENCY="$2" dotnet test tests/MetaCompute.Api.Tests \
    --filter "FullyQualifiedName~OpenApiFuzzTests" --logger "console;verbosity=detailed" 2>&1 \
    | grep -E "requests \(|failed the contract|Passed |Failed " | sed -e 's/^[[:space:]]*//'
}
run "$rounds" 1
run "$rounds" "$concurrency"
