-- slogate.supabase kit 4/4: the runbook's verification functions.
--
-- Each returns jsonb {"ok": bool, "checks": [{"name", "ok", "detail"}]} built
-- from what the catalog says now, so a dropped index, a disabled RLS or a
-- missing function is named in the failing check's detail.
-- Callable by the deploy, by service_role, and through the API by admins only.

-- Raises insufficient_privilege unless the caller is an admin (JWT) or not an API role.
CREATE FUNCTION slogate.require_admin()
  RETURNS void
  LANGUAGE plpgsql STABLE SET search_path = ''
  AS $$
BEGIN
  IF current_user IN ('anon', 'authenticated') AND NOT slogate.is_admin() THEN
    RAISE EXCEPTION 'forbidden' USING ERRCODE = '42501';
  END IF;
END
$$;

CREATE FUNCTION slogate.check(p_name text, p_ok boolean, p_detail text)
  RETURNS jsonb
  LANGUAGE sql IMMUTABLE SET search_path = ''
  AS $$
    SELECT pg_catalog.jsonb_build_object('name', p_name, 'ok', coalesce(p_ok, false), 'detail', p_detail)
  $$;

CREATE FUNCTION slogate.verdict(p_checks jsonb[])
  RETURNS jsonb
  LANGUAGE sql IMMUTABLE SET search_path = ''
  AS $$
    SELECT pg_catalog.jsonb_build_object(
      'ok', NOT EXISTS (SELECT 1 FROM pg_catalog.unnest(p_checks) c WHERE (c ->> 'ok')::boolean IS NOT TRUE),
      'checks', pg_catalog.to_jsonb(p_checks))
  $$;

-- Names from `wanted` that are not relations of the given kinds, comma-separated ('' when none).
CREATE FUNCTION slogate.missing_relations(p_wanted text[], p_kinds "char"[])
  RETURNS text
  LANGUAGE sql STABLE SET search_path = ''
  AS $$
    SELECT coalesce(pg_catalog.string_agg(w, ', ' ORDER BY w), '')
    FROM pg_catalog.unnest(p_wanted) w
    WHERE NOT EXISTS (
      SELECT 1 FROM pg_catalog.pg_class c
      WHERE c.oid = pg_catalog.to_regclass(w) AND c.relkind = ANY (p_kinds))
  $$;

-- Names from `wanted` (regprocedure text) that are not functions, comma-separated.
CREATE FUNCTION slogate.missing_functions(p_wanted text[])
  RETURNS text
  LANGUAGE sql STABLE SET search_path = ''
  AS $$
    SELECT coalesce(pg_catalog.string_agg(w, ', ' ORDER BY w), '')
    FROM pg_catalog.unnest(p_wanted) w
    WHERE pg_catalog.to_regprocedure(w) IS NULL
  $$;

-- Materialized views of a schema without a unique index usable by REFRESH ... CONCURRENTLY.
CREATE FUNCTION slogate.matviews_without_unique_index(p_schema text)
  RETURNS text
  LANGUAGE sql STABLE SET search_path = ''
  AS $$
    SELECT coalesce(pg_catalog.string_agg(c.oid::regclass::text, ', ' ORDER BY c.relname), '')
    FROM pg_catalog.pg_class c
    WHERE c.relkind = 'm' AND c.relnamespace = p_schema::regnamespace
      AND NOT EXISTS (
        SELECT 1 FROM pg_catalog.pg_index i
        WHERE i.indrelid = c.oid AND i.indisunique AND i.indisvalid AND i.indimmediate
          AND i.indpred IS NULL AND i.indexprs IS NULL)
  $$;

-- Runbook step 1: the performance migration's objects are all there and usable.
CREATE FUNCTION public.verify_migration_success()
  RETURNS jsonb
  LANGUAGE plpgsql STABLE SET search_path = ''
  AS $$
DECLARE
  missing text;
  checks jsonb[] := '{}';
BEGIN
  PERFORM slogate.require_admin();
  missing := slogate.missing_relations(ARRAY['public.performance_metrics', 'public.query_cache',
    'public.query_cache_stats', 'public.cache_warmers', 'public.cache_invalidation_queue',
    'public.mv_refresh_log', 'public.audit_log'], ARRAY['r', 'p']::"char"[]);
  checks := checks || slogate.check('tables_exist', missing = '',
    CASE WHEN missing = '' THEN 'all 7 kit tables exist' ELSE 'missing: ' || missing END);

  missing := slogate.missing_relations(ARRAY['public.api_metrics_5m', 'public.performance_analytics_5min'],
    ARRAY['v']::"char"[]);
  checks := checks || slogate.check('slo_views_exist', missing = '',
    CASE WHEN missing = '' THEN 'api_metrics_5m and performance_analytics_5min exist' ELSE 'missing: ' || missing END);

  missing := slogate.missing_relations(ARRAY['public.analytics_endpoint_hourly', 'public.analytics_slo_daily'],
    ARRAY['m']::"char"[]);
  checks := checks || slogate.check('analytics_views_exist', missing = '',
    CASE WHEN missing = '' THEN 'analytics materialized views exist' ELSE 'missing: ' || missing END);

  missing := slogate.matviews_without_unique_index('public');
  checks := checks || slogate.check('matview_unique_indexes', missing = '',
    CASE WHEN missing = '' THEN 'every materialized view in public has a usable unique index'
         ELSE 'no usable unique index: ' || missing END);

  SELECT coalesce(pg_catalog.string_agg(i.indexrelid::regclass::text, ', ' ORDER BY 1), '') INTO missing
  FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class t ON t.oid = i.indrelid
  WHERE t.relnamespace = 'public'::regnamespace AND NOT (i.indisvalid AND i.indisready);
  checks := checks || slogate.check('indexes_valid', missing = '',
    CASE WHEN missing = '' THEN 'no invalid index in public' ELSE 'invalid (rebuild them): ' || missing END);

  SELECT CASE WHEN EXISTS (
    SELECT 1 FROM pg_catalog.pg_index i
    JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
    WHERE i.indrelid = pg_catalog.to_regclass('public.performance_metrics') AND a.attname = 'created_at'
      AND i.indisvalid) THEN '' ELSE 'public.performance_metrics(created_at)' END INTO missing;
  checks := checks || slogate.check('metrics_time_index', missing = '',
    CASE WHEN missing = '' THEN 'performance_metrics is indexed on created_at' ELSE 'missing index: ' || missing END);

  missing := slogate.missing_functions(ARRAY['public.refresh_materialized_views_staggered(double precision,text)',
    'public.refresh_analytics_views_concurrent(integer)', 'public.drain_cache_invalidation_queue(integer,integer)',
    'public.warm_cache_top_queries(integer)', 'public.clean_expired_cache()',
    'public.check_slo_compliance(integer,double precision,double precision,double precision,double precision,integer)']);
  checks := checks || slogate.check('functions_exist', missing = '',
    CASE WHEN missing = '' THEN 'cache, queue, refresh and SLO functions exist' ELSE 'missing: ' || missing END);
  RETURN slogate.verdict(checks);
END
$$;

-- Runbook step 2: the security hardening holds (RLS, policies, fixed search_path, revoked EXECUTE).
CREATE FUNCTION public.verify_final_punchlist_migration()
  RETURNS jsonb
  LANGUAGE plpgsql STABLE SET search_path = ''
  AS $$
DECLARE
  found text;
  checks jsonb[] := '{}';
  api_roles text[];
BEGIN
  PERFORM slogate.require_admin();
  SELECT coalesce(pg_catalog.string_agg(c.oid::regclass::text, ', ' ORDER BY c.relname), '') INTO found
  FROM pg_catalog.pg_class c
  WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') AND NOT c.relrowsecurity;
  checks := checks || slogate.check('rls_enabled', found = '',
    CASE WHEN found = '' THEN 'RLS is enabled on every table in public' ELSE 'RLS disabled on: ' || found END);

  SELECT coalesce(pg_catalog.string_agg(c.oid::regclass::text, ', ' ORDER BY c.relname), '') INTO found
  FROM pg_catalog.pg_class c
  WHERE c.relnamespace = 'public'::regnamespace AND c.relkind IN ('r', 'p') AND c.relrowsecurity
    AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_policy p WHERE p.polrelid = c.oid);
  checks := checks || slogate.check('rls_policies', found = '',
    CASE WHEN found = '' THEN 'every RLS table in public has a policy' ELSE 'RLS without any policy: ' || found END);

  SELECT coalesce(pg_catalog.string_agg(t, ', ' ORDER BY t), '') INTO found
  FROM pg_catalog.unnest(ARRAY['public.performance_metrics', 'public.query_cache', 'public.query_cache_stats',
    'public.cache_warmers', 'public.cache_invalidation_queue', 'public.mv_refresh_log', 'public.audit_log']) t
  WHERE pg_catalog.to_regclass(t) IS NULL OR EXISTS (
    SELECT 1 FROM pg_catalog.pg_policy p
    WHERE p.polrelid = pg_catalog.to_regclass(t)
      AND coalesce(pg_catalog.pg_get_expr(p.polqual, p.polrelid), '') NOT LIKE '%slogate.is_admin()%');
  checks := checks || slogate.check('admin_tables_admin_only', found = '',
    CASE WHEN found = '' THEN 'kit tables are readable through the API by admins only'
         ELSE 'missing, or a policy not limited to admins: ' || found END);

  SELECT coalesce(pg_catalog.string_agg(p.oid::regprocedure::text, ', ' ORDER BY 1), '') INTO found
  FROM pg_catalog.pg_proc p
  WHERE p.pronamespace IN ('public'::regnamespace, 'slogate'::regnamespace) AND p.prokind IN ('f', 'p')
    AND NOT EXISTS (SELECT 1 FROM pg_catalog.unnest(p.proconfig) s WHERE s LIKE 'search\_path=%');
  checks := checks || slogate.check('function_search_path', found = '',
    CASE WHEN found = '' THEN 'every function in public and slogate has a fixed search_path'
         ELSE 'mutable search_path: ' || found END);

  SELECT coalesce(pg_catalog.string_agg(p.oid::regprocedure::text, ', ' ORDER BY 1), '') INTO found
  FROM pg_catalog.pg_proc p
  WHERE p.pronamespace IN ('public'::regnamespace, 'slogate'::regnamespace) AND p.prosecdef
    AND NOT ('search_path=""' = ANY (coalesce(p.proconfig, '{}')));
  checks := checks || slogate.check('security_definer_empty_search_path', found = '',
    CASE WHEN found = '' THEN 'every SECURITY DEFINER function runs with search_path = ''''' 
         ELSE 'SECURITY DEFINER without search_path = '''': ' || found END);

  SELECT pg_catalog.array_agg(rolname) INTO api_roles
  FROM pg_catalog.pg_roles WHERE rolname IN ('anon', 'authenticated');
  SELECT coalesce(pg_catalog.string_agg(DISTINCT f || ' by ' || r, ', '), '') INTO found
  FROM pg_catalog.unnest(ARRAY['public.refresh_materialized_views_staggered(double precision,text)',
    'public.refresh_analytics_views_concurrent(integer)', 'public.drain_cache_invalidation_queue(integer,integer)',
    'public.warm_cache_top_queries(integer)', 'public.clean_expired_cache()', 'slogate.refresh_view(regclass,boolean)']) f,
    pg_catalog.unnest(coalesce(api_roles, '{}')) r
  WHERE pg_catalog.to_regprocedure(f) IS NOT NULL
    AND pg_catalog.has_function_privilege(r, pg_catalog.to_regprocedure(f), 'EXECUTE');
  checks := checks || slogate.check('maintenance_not_executable_by_api', found = '',
    CASE WHEN found = '' THEN 'maintenance functions are not executable by anon or authenticated'
         ELSE 'executable: ' || found END);

  SELECT coalesce(pg_catalog.string_agg(DISTINCT c.oid::regclass::text || ' by ' || r, ', '), '') INTO found
  FROM pg_catalog.pg_class c, pg_catalog.unnest(coalesce(api_roles, '{}')) r
  WHERE c.relkind = 'm' AND c.relnamespace = 'public'::regnamespace
    AND pg_catalog.has_table_privilege(r, c.oid, 'SELECT');
  checks := checks || slogate.check('matviews_not_in_api', found = '',
    CASE WHEN found = '' THEN 'no materialized view is readable by anon or authenticated'
         ELSE 'readable: ' || found END);

  SELECT coalesce(pg_catalog.string_agg(con.conname || ' on ' || con.conrelid::regclass::text, ', ' ORDER BY 1), '')
  INTO found
  FROM pg_catalog.pg_constraint con
  WHERE con.contype = 'f' AND con.connamespace = 'public'::regnamespace
    AND NOT EXISTS (
      SELECT 1 FROM pg_catalog.pg_index i
      WHERE i.indrelid = con.conrelid
        AND (pg_catalog.string_to_array(i.indkey::text, ' ')::int2[])[1:pg_catalog.cardinality(con.conkey)]
            OPERATOR(pg_catalog.@>) con.conkey
        AND pg_catalog.cardinality(con.conkey) <= pg_catalog.array_length(pg_catalog.string_to_array(i.indkey::text, ' '), 1));
  checks := checks || slogate.check('foreign_keys_indexed', found = '',
    CASE WHEN found = '' THEN 'every foreign key in public has a covering index' ELSE 'unindexed: ' || found END);
  RETURN slogate.verdict(checks);
END
$$;

-- Runbook step 3: one check per materialized view of public, named after it.
CREATE FUNCTION public.verify_materialized_view_indexes()
  RETURNS jsonb
  LANGUAGE plpgsql STABLE SET search_path = ''
  AS $$
DECLARE
  checks jsonb[] := '{}';
  view_row record;
BEGIN
  PERFORM slogate.require_admin();
  FOR view_row IN
    SELECT c.oid::regclass::text AS name, c.relispopulated AS populated,
           (SELECT i.indexrelid::regclass::text FROM pg_catalog.pg_index i
            WHERE i.indrelid = c.oid AND i.indisunique AND i.indisvalid AND i.indimmediate
              AND i.indpred IS NULL AND i.indexprs IS NULL
            ORDER BY 1 LIMIT 1) AS unique_index
    FROM pg_catalog.pg_class c
    WHERE c.relkind = 'm' AND c.relnamespace = 'public'::regnamespace
    ORDER BY c.relname
  LOOP
    checks := checks || slogate.check(view_row.name,
      view_row.unique_index IS NOT NULL AND view_row.populated,
      CASE WHEN view_row.unique_index IS NULL THEN 'no valid unique index: REFRESH ... CONCURRENTLY is impossible'
           WHEN NOT view_row.populated THEN 'not populated: refresh it once without CONCURRENTLY'
           ELSE 'unique index ' || view_row.unique_index END);
  END LOOP;
  IF pg_catalog.cardinality(checks) = 0 THEN
    checks := checks || slogate.check('materialized_views', false, 'no materialized view in public');
  END IF;
  RETURN slogate.verdict(checks);
END
$$;

-- SLO compliance over the complete 5-minute buckets of the last `window_minutes`:
-- per metric the value, threshold, status (pass, breach, no_data) and samples.
-- Fewer than `min_samples` requests in the window is no data, never a pass;
-- then ok is null.
CREATE FUNCTION public.check_slo_compliance(window_minutes integer DEFAULT 15,
                                            p95_ms_max double precision DEFAULT 500,
                                            p99_ms_max double precision DEFAULT 1000,
                                            err_rate_max double precision DEFAULT 1,
                                            cache_hit_rate_min double precision DEFAULT 30,
                                            min_samples integer DEFAULT 20)
  RETURNS jsonb
  LANGUAGE plpgsql STABLE SET search_path = ''
  AS $$
DECLARE
  origin CONSTANT timestamptz := TIMESTAMPTZ '1970-01-01 00:00:00+00';
  width CONSTANT interval := interval '5 minutes';
  window_end timestamptz := pg_catalog.date_bin(width, now(), origin);
  window_start timestamptz;
  figures record;
  checks jsonb := '[]';
  metric record;
  no_data boolean;
  breached boolean;
BEGIN
  PERFORM slogate.require_admin();
  IF window_minutes IS NULL OR window_minutes < 5 THEN
    RAISE EXCEPTION 'window_minutes must be 5 or more, got %', window_minutes USING ERRCODE = '22023';
  END IF;
  window_start := window_end - pg_catalog.make_interval(mins => (window_minutes / 5) * 5);
  SELECT count(*) AS requests,
         count(*) FILTER (WHERE m.status IS NULL OR m.status = 0 OR m.status >= 500) AS errors,
         percentile_cont(0.95) WITHIN GROUP (ORDER BY m.duration_ms) AS p95_ms,
         percentile_cont(0.99) WITHIN GROUP (ORDER BY m.duration_ms) AS p99_ms,
         count(*) FILTER (WHERE m.cache_hit) AS cache_hits
  INTO figures
  FROM public.performance_metrics m
  WHERE m.created_at >= window_start AND m.created_at < window_end;
  no_data := figures.requests < min_samples;
  FOR metric IN
    SELECT * FROM (VALUES
      ('p95_ms', figures.p95_ms, '<', p95_ms_max),
      ('p99_ms', figures.p99_ms, '<', p99_ms_max),
      ('err_rate', CASE WHEN figures.requests > 0 THEN 100.0 * figures.errors / figures.requests END, '<', err_rate_max),
      ('cache_hit_rate', CASE WHEN figures.requests > 0 THEN 100.0 * figures.cache_hits / figures.requests END, '>=',
       cache_hit_rate_min)
    ) AS t(name, value, op, threshold)
  LOOP
    breached := NOT no_data AND NOT CASE metric.op WHEN '<' THEN metric.value < metric.threshold
                                                  ELSE metric.value >= metric.threshold END;
    checks := checks || pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(
      'name', metric.name,
      'ok', CASE WHEN no_data THEN NULL ELSE NOT breached END,
      'status', CASE WHEN no_data THEN 'no_data' WHEN breached THEN 'breach' ELSE 'pass' END,
      'value', metric.value,
      'op', metric.op,
      'threshold', metric.threshold,
      'samples', figures.requests,
      'detail', CASE WHEN no_data
        THEN pg_catalog.format('no data: %s requests in the window, %s needed', figures.requests, min_samples)
        ELSE pg_catalog.format('%s %s %s %s over %s requests', metric.name, pg_catalog.round(metric.value::numeric, 2),
                               CASE WHEN breached THEN 'breaks' ELSE 'meets' END,
                               metric.op || ' ' || metric.threshold, figures.requests) END));
  END LOOP;
  RETURN pg_catalog.jsonb_build_object(
    'ok', CASE WHEN no_data THEN NULL ELSE NOT pg_catalog.jsonb_path_exists(checks, '$[*] ? (@.status == "breach")') END,
    'status', CASE WHEN no_data THEN 'no_data'
                   WHEN pg_catalog.jsonb_path_exists(checks, '$[*] ? (@.status == "breach")') THEN 'breach'
                   ELSE 'pass' END,
    'window', pg_catalog.jsonb_build_object('from', window_start, 'to', window_end, 'bucket_seconds', 300,
                                            'buckets', (window_minutes / 5)),
    'requests', figures.requests,
    'checks', checks);
END
$$;

REVOKE EXECUTE ON FUNCTION
  slogate.require_admin(), slogate.check(text, boolean, text), slogate.verdict(jsonb[]),
  slogate.missing_relations(text[], "char"[]), slogate.missing_functions(text[]),
  slogate.matviews_without_unique_index(text),
  public.verify_migration_success(), public.verify_final_punchlist_migration(),
  public.verify_materialized_view_indexes(),
  public.check_slo_compliance(integer, double precision, double precision, double precision, double precision, integer)
  FROM public, anon;
-- Admins call these through the API; require_admin() refuses everyone else.
GRANT EXECUTE ON FUNCTION
  slogate.require_admin(), slogate.check(text, boolean, text), slogate.verdict(jsonb[]),
  slogate.missing_relations(text[], "char"[]), slogate.missing_functions(text[]),
  slogate.matviews_without_unique_index(text),
  public.verify_migration_success(), public.verify_final_punchlist_migration(),
  public.verify_materialized_view_indexes(),
  public.check_slo_compliance(integer, double precision, double precision, double precision, double precision, integer)
  TO authenticated, service_role;
