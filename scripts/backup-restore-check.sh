#!/usr/bin/env bash
# Backs up a live Autoscaler Central database and restores it into another one, then proves the restore:
# every table's row count and checksum match, the restored service is ready (schema at head), and a node
# token issued before the backup still works against it (it needs the same SECRET_KEY).
#
#   scripts/backup-restore-check.sh            # throwaway databases on MYSQL_HOST (default 127.0.0.1, root)
#
# The backup itself is the commands in README "Backups and restore" (the whole database, and the smaller one
# without raw samples' rows); this script runs them once on a small fleet (the simulator) so the procedure is
# known to work. The source service is stopped before the dump, so the row counts can be compared exactly.
set -euo pipefail
cd "$(dirname "$0")/.."

HOST="${MYSQL_HOST:-127.0.0.1}"
PORT="${MYSQL_PORT:-3306}"
USER_="${MYSQL_USER:-root}"
export MYSQL_PWD="${MYSQL_PASSWORD:-}"
SUFFIX="$(date +%s)_$$"
SOURCE_DB="act_backup_src_${SUFFIX}"
RESTORED_DB="act_backup_dst_${SUFFIX}"
WORK="$(mktemp -d)"
SECRET="backup-check-secret-$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')"
API_PORT_SRC=$((20000 + RANDOM % 10000))
API_PORT_DST=$((API_PORT_SRC + 1))
PIDS=()
DUMP="${MYSQLDUMP:-$(command -v mysqldump || command -v mariadb-dump)}"
MYSQL=(mysql -h "$HOST" -P "$PORT" -u "$USER_" --batch --skip-column-names)

cleanup() {
  for pid in "${PIDS[@]:-}"; do [ -n "$pid" ] && kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  "${MYSQL[@]}" -e "DROP DATABASE IF EXISTS \`$SOURCE_DB\`; DROP DATABASE IF EXISTS \`$RESTORED_DB\`" || true
  rm -rf "$WORK"
}
trap cleanup EXIT

serve() { # serve <database> <port>: the service in the background
  MYSQL_DB="$1" API_PORT="$2" SECRET_KEY="$SECRET" LOG_LEVEL=warn JOBS_ENABLED=false \
    deno run --allow-all main.ts serve >"$WORK/serve-$1.log" 2>&1 &
  PIDS+=($!)
  for _ in $(seq 1 120); do
    curl -fsS "http://127.0.0.1:$2/readyz" >/dev/null 2>&1 && return 0
    sleep 0.5
  done
  echo "service on $1 did not become ready"; cat "$WORK/serve-$1.log"; exit 1
}

echo "== a living source database: $SOURCE_DB"
serve "$SOURCE_DB" "$API_PORT_SRC"
TOKEN="$(MYSQL_DB="$SOURCE_DB" SECRET_KEY="$SECRET" deno run --allow-all main.ts token create --name backup-check --expires 1h | grep -o 'ace_[A-Za-z0-9_-]*' | head -1)"
MYSQL_DB="$SOURCE_DB" SECRET_KEY="$SECRET" deno run --allow-all main.ts simulate \
  --url "http://127.0.0.1:$API_PORT_SRC/api" --nodes 5 --pools 2 --seconds 12 --tick-ms 500 \
  --dir "$WORK/fleet" --token "$TOKEN" >"$WORK/simulate.log" 2>&1
kill "${PIDS[0]}"; wait "${PIDS[0]}" 2>/dev/null || true; PIDS=()

echo "== backup: mysqldump --single-transaction (a consistent InnoDB snapshot, no table locks)"
started=$(date +%s.%N)
"$DUMP" -h "$HOST" -P "$PORT" -u "$USER_" --single-transaction --quick --no-tablespaces --hex-blob \
  "$SOURCE_DB" | gzip >"$WORK/backup.sql.gz"
echo "   $(du -h "$WORK/backup.sql.gz" | cut -f1) in $(echo "$(date +%s.%N) - $started" | bc | cut -c1-5) s"

echo "== restore into $RESTORED_DB"
"${MYSQL[@]}" -e "CREATE DATABASE \`$RESTORED_DB\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
gunzip -c "$WORK/backup.sql.gz" | "${MYSQL[@]}" "$RESTORED_DB"

echo "== compare every table (rows and CHECKSUM TABLE)"
tables=$("${MYSQL[@]}" -e "SELECT table_name FROM information_schema.tables WHERE table_schema = '$SOURCE_DB' ORDER BY table_name")
failed=0
for table in $tables; do
  a=$("${MYSQL[@]}" -e "SELECT COUNT(*) FROM \`$SOURCE_DB\`.\`$table\`; CHECKSUM TABLE \`$SOURCE_DB\`.\`$table\`" | awk '{print $NF}' | tr '\n' ' ')
  b=$("${MYSQL[@]}" -e "SELECT COUNT(*) FROM \`$RESTORED_DB\`.\`$table\`; CHECKSUM TABLE \`$RESTORED_DB\`.\`$table\`" | awk '{print $NF}' | tr '\n' ' ')
  if [ "$a" = "$b" ]; then printf '   %-24s ok   rows, checksum: %s\n' "$table" "$a"; else
    printf '   %-24s DIFF %s vs %s\n' "$table" "$a" "$b"; failed=1; fi
done
[ "$failed" = 0 ] || { echo "restore differs"; exit 1; }

echo "== the restored service is ready and knows the nodes"
serve "$RESTORED_DB" "$API_PORT_DST"
state=$(ls "$WORK"/fleet/*/config.yaml.central-state.json | head -1)
node_id=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['node_id'])" "$state")
node_token=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['node_token'])" "$state")
status=$(curl -s -o /dev/null -w '%{http_code}' -X POST "http://127.0.0.1:$API_PORT_DST/api/v1/nodes/$node_id/heartbeat" \
  -H "Authorization: Bearer $node_token" -H 'Content-Type: application/json' -d '{"status":"running"}')
echo "   heartbeat with a token issued before the backup: HTTP $status"
[ "$status" = 200 ] || exit 1

echo "== the smaller backup (README): raw samples' rows left out, their table kept"
SMALL_DB="act_backup_small_${SUFFIX}"
trap 'cleanup; "${MYSQL[@]}" -e "DROP DATABASE IF EXISTS \`$SMALL_DB\`" || true' EXIT
{ "$DUMP" -h "$HOST" -P "$PORT" -u "$USER_" --single-transaction --quick --no-tablespaces \
    --ignore-table="$SOURCE_DB.metric_samples" "$SOURCE_DB"
  "$DUMP" -h "$HOST" -P "$PORT" -u "$USER_" --no-data --no-tablespaces "$SOURCE_DB" metric_samples
} | gzip >"$WORK/small.sql.gz"
echo "   $(du -h "$WORK/small.sql.gz" | cut -f1) (the whole backup: $(du -h "$WORK/backup.sql.gz" | cut -f1))"
"${MYSQL[@]}" -e "CREATE DATABASE \`$SMALL_DB\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
gunzip -c "$WORK/small.sql.gz" | "${MYSQL[@]}" "$SMALL_DB"
serve "$SMALL_DB" "$((API_PORT_DST + 1))"
pool=$("${MYSQL[@]}" -e "SELECT pool_ocid FROM \`$SMALL_DB\`.instance_pools WHERE node_id = '$node_id' LIMIT 1")
now=$(date -u +%Y-%m-%dT%H:%M:%S.000Z)
sample="{\"instance_pool_id\":\"$pool\",\"ts\":\"$now\",\"cpu_util\":50,\"memory_util\":40,\"instance_count\":2}"
status=$(curl -s -o "$WORK/small-metrics.json" -w '%{http_code}' -X POST \
  "http://127.0.0.1:$((API_PORT_DST + 1))/api/v1/nodes/$node_id/metrics" \
  -H "Authorization: Bearer $node_token" -H 'Content-Type: application/json' -d "{\"samples\":[$sample]}")
echo "   a metric batch on the restored smaller backup: HTTP $status $(cat "$WORK/small-metrics.json")"
[ "$status" = 200 ] || exit 1
echo "backup and restore: OK"
