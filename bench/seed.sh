#!/usr/bin/env bash
# Measures seeding a simulated fleet into an empty database on a throwaway PostgreSQL (durable settings, as in
# production). Usage: bench/seed.sh [target-gpus]   (default 1000000)
set -euo pipefail
cd "$(dirname "$0")/.."
target="${1:-1000000}"
bin="$(dirname "$(readlink -f "$(command -v initdb || ls /usr/lib/postgresql/*/bin/initdb | tail -1)")")"
dir="$(mktemp -d /tmp/metacompute-seed-XXXX)"
port=$((20000 + RANDOM % 10000))
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
[ "$(id -u)" = 0 ] && chown postgres:postgres "$dir"
as_pg "$bin/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >/dev/null
as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/data/server.log" -w -o "-p $port -c listen_addresses=127.0.0.1 -c unix_socket_directories=''" start >/dev/null
trap 'as_pg "$bin/pg_ctl" -D "$dir/data" -m fast stop >/dev/null; rm -rf "$dir"' EXIT

dotnet build -c Release src/MetaCompute.Api >/dev/null
cs="Host=127.0.0.1;Port=$port;Username=postgres;Database=metacompute"
start=$(date +%s.%N)
dotnet src/MetaCompute.Api/bin/Release/net10.0/MetaCompute.Api.dll --role seed \
  --ConnectionStrings:Postgres="$cs" --Simulation:TargetGpus="$target" --Serilog:MinimumLevel:Default=Information 2>&1 | grep -i "seeded" || true
end=$(date +%s.%N)
echo "target_gpus=$target wall_seconds_including_migrations=$(echo "$end - $start" | bc)"
as_pg psql -h 127.0.0.1 -p "$port" -U postgres -d metacompute -Atc \
  "SELECT 'database_size=' || pg_size_pretty(pg_database_size('metacompute')) || ' gpus=' || (SELECT count(*) FROM gpus) || ' nodes=' || (SELECT count(*) FROM nodes)"
