#!/usr/bin/env bash
# The deployment runbook's commands as the plain script a user would write
# (../shared/seed/deployment-runbook.md): back up, apply the pending
# migrations with psql, verify, warm, refresh, switch the app's release,
# smoke-test with curl. No SLO gate, no rollback, no report: the alternative
# bench_deploy.py times the playbook against.
#
# Environment:
#   DATABASE_URL        the database (as in the runbook's psql calls)
#   PROJECT_DIR         the project: PROJECT_DIR/supabase/migrations/<version>_<name>.sql
#   BACKUP_DIR          where pg_dump writes its backup
#   APP_ROOT, APP_SRC   the app's release root (releases/, current, supervisord.conf) and its source (release.py)
#   RELEASE_ID          the release to switch to
#   APP_URL             the app (default http://localhost:3000)
#   ADMIN_TOKEN, REGULAR_USER_TOKEN   bearer tokens for the smoke tests
#   RATE_LIMIT_TOKEN    token for the 35-request loop (default ADMIN_TOKEN; the limit counts per token)
#   PSQL, PG_DUMP, PYTHON, SUPERVISORCTL   the tools (default: from PATH)
set -euo pipefail

: "${DATABASE_URL:?DATABASE_URL is not set}" "${PROJECT_DIR:?}" "${BACKUP_DIR:?}" "${APP_ROOT:?}" "${APP_SRC:?}"
: "${RELEASE_ID:?}" "${ADMIN_TOKEN:?}" "${REGULAR_USER_TOKEN:?}"
APP_URL="${APP_URL:-http://localhost:3000}"
RATE_LIMIT_TOKEN="${RATE_LIMIT_TOKEN:-$ADMIN_TOKEN}"
PSQL="${PSQL:-psql}"
PG_DUMP="${PG_DUMP:-pg_dump}"
PYTHON="${PYTHON:-python3}"
SUPERVISORCTL="${SUPERVISORCTL:-supervisorctl}"

q() { "$PSQL" "$DATABASE_URL" -X -v ON_ERROR_STOP=1 -c "$1"; }
fail() { echo "deploy_runbook.sh: $*" >&2; exit 1; }

# A verification function returns jsonb {"ok": ..., "checks": [...]}: print it, stop unless ok.
verify() {
  local out
  out="$("$PSQL" "$DATABASE_URL" -X -v ON_ERROR_STOP=1 -tA -c "SELECT $1();")"
  echo "$1: $out"
  case "$out" in *'"ok": true'*) ;; *) fail "$1 failed" ;; esac
}

expect_status() {   # expect_status CODE TOKEN PATH
  local code
  code="$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $2" "$APP_URL$3")"
  echo "GET $3 -> $code"
  [ "$code" = "$1" ] || fail "GET $3 answered $code, expected $1"
}

echo "== Pre-deployment: backup"
mkdir -p "$BACKUP_DIR"
"$PG_DUMP" -Fc -f "$BACKUP_DIR/backup_$(date +%Y%m%d_%H%M%S).dump" "$DATABASE_URL"

echo "== Steps 1-2: apply the pending migrations"
applied="$("$PSQL" "$DATABASE_URL" -X -tA -c "SELECT version FROM supabase_migrations.schema_migrations")"
for file in "$PROJECT_DIR"/supabase/migrations/*.sql; do
  base="$(basename "$file" .sql)"
  version="${base%%_*}"
  name="${base#*_}"
  if grep -qx "$version" <<<"$applied"; then
    continue
  fi
  echo "applying $base"
  # One transaction: the file and its history row, or neither.
  "$PSQL" "$DATABASE_URL" -X -q -v ON_ERROR_STOP=1 -1 -f "$file" \
    -c "INSERT INTO supabase_migrations.schema_migrations (version, name) VALUES ('$version', '$name')"
  case "$name" in
    performance_optimization_enhanced) verify verify_migration_success ;;
    final_punchlist_implementation) verify verify_final_punchlist_migration ;;
  esac
done

echo "== Step 3: critical gotchas"
verify verify_materialized_view_indexes
q "SELECT check_slo_compliance();"
q "SELECT drain_cache_invalidation_queue(100, 60);"

echo "== Step 4: warm the cache, refresh the materialized views"
q "SELECT warm_cache_top_queries(20);"
q "SELECT refresh_materialized_views_staggered();"
q "SELECT * FROM mv_refresh_log ORDER BY started_at DESC LIMIT 10;"

echo "== Release $RELEASE_ID"
"$PYTHON" "$APP_SRC/release.py" build --root "$APP_ROOT" --id "$RELEASE_ID"
"$PYTHON" "$APP_SRC/release.py" switch --root "$APP_ROOT" --id "$RELEASE_ID"
$SUPERVISORCTL -c "$APP_ROOT/supervisord.conf" restart slogate-app
for attempt in $(seq 1 60); do
  if curl -fsS "$APP_URL/api/health" 2>/dev/null | grep -q "\"release\":\"$RELEASE_ID\""; then
    break
  fi
  [ "$attempt" -lt 60 ] || fail "release $RELEASE_ID is not serving after 30 s"
  sleep 0.5
done

echo "== Smoke tests"
curl -fsS "$APP_URL/api/health"; echo
expect_status 200 "$ADMIN_TOKEN" /api/admin/performance
expect_status 200 "$ADMIN_TOKEN" /api/admin/audit-log
limited=0
for _ in {1..35}; do
  code="$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $RATE_LIMIT_TOKEN" "$APP_URL/api/admin/performance")"
  if [ "$code" = 429 ]; then limited=$((limited + 1)); fi
done
echo "rate limit loop: $limited of 35 answered 429"
[ "$limited" -gt 0 ] || fail "the rate limit never answered 429"
expect_status 403 "$REGULAR_USER_TOKEN" /api/admin/performance
expect_status 200 "$ADMIN_TOKEN" /api/admin/performance

echo "== Performance validation"
q "SELECT check_slo_compliance();"
q "SELECT COUNT(*) FROM performance_metrics WHERE created_at > NOW() - INTERVAL '15 minutes';"
q "SELECT AVG(cache_hit_rate_percent) FROM performance_analytics_5min WHERE bucket > NOW() - INTERVAL '1 hour';"
echo "deployed $RELEASE_ID"
