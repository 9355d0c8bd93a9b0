#!/usr/bin/env bash
# End-to-end load: the Release API on a throwaway PostgreSQL (durable settings), 32 connections booking and
# cancelling, against a raw-SQL baseline: pgbench writing the same allocation rows with the same client count and the
# same commits (one per request), and, for comparison with earlier runs, pgbench inserting and deleting a row in one
# transaction. They alternate in rounds of the same length (API, pgbench, pgbench, API, ...) on the same database, so
# the machine's drift falls on both; the API's first round follows a 40 s warm-up that is not timed (a fresh process
# spends its first half-minute of this load in the JIT). Then the overlap check. Everything is on loopback and stops itself.
# Usage: bench/load.sh [seconds=60] [connections=32] [rounds=3] [warmup_seconds=40]
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"; connections="${2:-32}"; rounds="${3:-3}"; warmup="${4:-40}"
pool="us-ohio-1-h100"
bin="$(dirname "$(readlink -f "$(command -v initdb || ls /usr/lib/postgresql/*/bin/initdb | tail -1)")")"
dir="$(mktemp -d /tmp/metacompute-load-XXXX)"
port=$((20000 + RANDOM % 10000)); api_port=$((30000 + RANDOM % 10000))
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres:postgres "$dir"
as_pg "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >/dev/null
as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/data/server.log" -w \
  -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c max_connections=200" start >/dev/null
api_pid=""
cleanup() {
  [ -n "$api_pid" ] && kill "$api_pid" 2>/dev/null && wait "$api_pid" 2>/dev/null || true
  as_pg "$bin/pg_ctl" -D "$dir/data" -m fast stop >/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

dotnet build -c Release src/MetaCompute.Api >/dev/null
dotnet build -c Release bench/MetaCompute.LoadDriver >/dev/null
cs="Host=127.0.0.1;Port=$port;Username=postgres;Database=metacompute;Maximum Pool Size=64"
export ConnectionStrings__Postgres="$cs" Serilog__MinimumLevel__Default=Warning \
  RateLimiting__PermitsPerSecond=1000000 RateLimiting__Burst=1000000 \
  Bootstrap__DemoTenants__0__Name=load-test Bootstrap__DemoTenants__0__ApiKey=mc_load_test_key
dotnet src/MetaCompute.Api/bin/Release/net10.0/MetaCompute.Api.dll --urls "http://127.0.0.1:$api_port" > "$dir/api.log" 2>&1 &
api_pid=$!
for _ in $(seq 1 60); do curl -sf "http://127.0.0.1:$api_port/health/ready" >/dev/null && break; sleep 1; done

psql_() { as_pg psql -h 127.0.0.1 -p "$port" -U postgres -d metacompute -Atc "$1"; }
driver() {
  dotnet bench/MetaCompute.LoadDriver/bin/Release/net10.0/MetaCompute.LoadDriver.dll "http://127.0.0.1:$api_port" mc_load_test_key "$pool" \
    "$connections" "$seconds" 1 "$1"
}
baseline() {
  if [ ! -f "$dir/requests.sql" ]; then
    local lease kept first last
    # Two of the API's leases to hang rows on: one for the rows "pair" deletes, one for those "requests" keeps.
    lease="$(psql_ "SELECT id FROM leases ORDER BY id LIMIT 1")"; kept="$(psql_ "SELECT id FROM leases ORDER BY id LIMIT 1 OFFSET 1")"
    first="$(psql_ "SELECT min(id) FROM nodes WHERE pool_id = '$pool'")"; last="$(psql_ "SELECT max(id) FROM nodes WHERE pool_id = '$pool'")"
    # "requests" commits what the API's two requests commit: the booking inserts an allocation row starting now, and
    # the cancellation (after the start) cuts its period at that moment and keeps the row, each in a transaction of
    # its own. Each client's rows sit on a GPU of its own of the pool (the API's best fit packs such bookings together
    # too), ten years ahead, so they never overlap one another or the API's; the UPDATE finds the row by its key.
    cat > "$dir/requests.sql" <<SQL
\\set gpu $first * 8 + :client_id
INSERT INTO allocations (lease_id, gpu_id, node_id, period) VALUES ('$kept', :gpu, :gpu / 8,
  tstzrange(clock_timestamp() + interval '10 years', clock_timestamp() + interval '10 years 1 hour')) RETURNING id \\gset
UPDATE allocations SET period = tstzrange(lower(period), clock_timestamp() + interval '10 years') WHERE id = :id;
SQL
    # "pair", the baseline of earlier runs: a row far in the future on a random GPU of the pool, inserted and deleted
    # in one transaction, so one commit per reservation instead of two.
    cat > "$dir/pair.sql" <<SQL
\\set node random($first, $last)
\\set idx random(0, 7)
\\set off random(1, 100000000)
BEGIN;
INSERT INTO allocations (lease_id, gpu_id, node_id, period) VALUES ('$lease', :node * 8 + :idx, :node,
  tstzrange(timestamptz '2030-01-01' + :off * interval '1 minute', timestamptz '2030-01-01' + (:off + 60) * interval '1 minute'));
DELETE FROM allocations WHERE lease_id = '$lease' AND gpu_id = :node * 8 + :idx
  AND lower(period) = timestamptz '2030-01-01' + :off * interval '1 minute';
END;
SQL
    chmod 644 "$dir/requests.sql" "$dir/pair.sql"
  fi
  as_pg "$bin/pgbench" -h 127.0.0.1 -p "$port" -U postgres -n -c "$connections" -j 2 -T "$seconds" -f "$dir/$1.sql" metacompute
}
median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'; }

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f%%", 100 * a / b }'; }
api_rates=(); request_rates=(); pair_rates=()
for round in $(seq 1 "$rounds"); do
  echo "## round $round: API, book + cancel, $connections connections, $seconds s$([ "$round" = 1 ] && echo " after a $warmup s warm-up")"
  line="$(driver "$([ "$round" = 1 ] && echo "$warmup" || echo 0)")"; echo "$line"
  api_rates+=("$(grep -o 'reservations_per_second=[0-9.]*' <<<"$line" | cut -d= -f2)")
  echo "## round $round: raw SQL baseline (pgbench), per request: insert one allocation row, commit; cut its period, commit; $connections clients, $seconds s"
  out="$(baseline requests)"; grep -E "number of transactions actually processed|latency average|tps|failed" <<<"$out"
  request_rates+=("$(grep -o 'tps = [0-9.]*' <<<"$out" | cut -d' ' -f3)")
  echo "## round $round: raw SQL pair (pgbench, earlier runs' baseline): insert and delete one allocation row in one transaction"
  out="$(baseline pair)"; grep -E "number of transactions actually processed|latency average|tps|failed" <<<"$out"
  pair_rates+=("$(grep -o 'tps = [0-9.]*' <<<"$out" | cut -d' ' -f3)")
  echo "round_ratio=$(ratio "${api_rates[-1]}" "${request_rates[-1]}") round_ratio_to_pair=$(ratio "${api_rates[-1]}" "${pair_rates[-1]}")"
done
kill "$api_pid"; wait "$api_pid" 2>/dev/null || true; api_pid=""

api_median="$(printf '%s\n' "${api_rates[@]}" | median)"
request_median="$(printf '%s\n' "${request_rates[@]}" | median)"; pair_median="$(printf '%s\n' "${pair_rates[@]}" | median)"
echo "## summary over $rounds rounds"
echo "api_reservations_per_second_median=$api_median pgbench_per_request_tps_median=$request_median pgbench_pair_tps_median=$pair_median" \
  "ratio_of_medians=$(ratio "$api_median" "$request_median") ratio_of_medians_to_pair=$(ratio "$api_median" "$pair_median")"
echo "overlapping_allocation_pairs=$(psql_ "SELECT count(*) FROM allocations a JOIN allocations b ON a.gpu_id = b.gpu_id AND a.id < b.id AND a.period && b.period")"
