-- slogate.supabase kit 3/4: cache, queue and refresh functions (runbook steps 3-4
-- and the rollback's cache invalidation).
--
-- All run with search_path = '' and fully qualified names. They are for the
-- deploy (postgres) and the app's server side (service_role): EXECUTE is
-- revoked from public, anon and authenticated.

-- Cache read for the app: counts the request for the warm-up statistics and
-- returns the cached value when it is still fresh, else NULL.
CREATE FUNCTION slogate.cache_get(p_key text, p_query_name text, p_params jsonb DEFAULT '{}')
  RETURNS jsonb
  LANGUAGE plpgsql VOLATILE SET search_path = ''
  AS $$
DECLARE
  cached jsonb;
BEGIN
  INSERT INTO public.query_cache_stats AS s (key, query_name, params, requests, last_requested_at)
  VALUES (p_key, p_query_name, coalesce(p_params, '{}'), 1, now())
  ON CONFLICT (key) DO UPDATE SET requests = s.requests + 1, last_requested_at = now();
  UPDATE public.query_cache c SET hits = c.hits + 1, last_hit_at = now()
  WHERE c.key = p_key AND c.expires_at > now()
  RETURNING c.value INTO cached;
  RETURN cached;
END
$$;

-- Cache write for the app after a miss.
CREATE FUNCTION slogate.cache_put(p_key text, p_query_name text, p_params jsonb, p_value jsonb,
                                  p_ttl interval DEFAULT interval '15 minutes')
  RETURNS void
  LANGUAGE sql VOLATILE SET search_path = ''
  AS $$
    INSERT INTO public.query_cache AS c (key, query_name, params, value, created_at, expires_at)
    VALUES (p_key, p_query_name, coalesce(p_params, '{}'), p_value, now(), now() + p_ttl)
    ON CONFLICT (key) DO UPDATE
      SET value = EXCLUDED.value, params = EXCLUDED.params, created_at = EXCLUDED.created_at,
          expires_at = EXCLUDED.expires_at
  $$;

-- Whether a materialized view can be refreshed CONCURRENTLY: it is populated
-- and has a valid, immediate, non-partial unique index on plain columns.
CREATE FUNCTION slogate.can_refresh_concurrently(p_view regclass)
  RETURNS boolean
  LANGUAGE sql STABLE SET search_path = ''
  AS $$
    SELECT c.relispopulated AND EXISTS (
      SELECT 1 FROM pg_catalog.pg_index i
      WHERE i.indrelid = c.oid AND i.indisunique AND i.indisvalid AND i.indimmediate
        AND i.indpred IS NULL AND i.indexprs IS NULL)
    FROM pg_catalog.pg_class c WHERE c.oid = p_view
  $$;

-- Refreshes one materialized view and logs it to mv_refresh_log. A failure is
-- logged and returned, never raised, so a caller refreshing many views goes on.
-- SECURITY DEFINER: REFRESH needs the view's owner, and service_role is not it.
CREATE FUNCTION slogate.refresh_view(p_view regclass, p_concurrently boolean DEFAULT true)
  RETURNS jsonb
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = ''
  AS $$
DECLARE
  started timestamptz := pg_catalog.clock_timestamp();
  use_concurrently boolean := p_concurrently AND slogate.can_refresh_concurrently(p_view);
  log_id bigint;
  row_count bigint;
  outcome jsonb;
BEGIN
  INSERT INTO public.mv_refresh_log (view_name, started_at, status, concurrent)
  VALUES (p_view::text, started, 'running', use_concurrently)
  RETURNING id INTO log_id;
  BEGIN
    IF use_concurrently THEN
      EXECUTE pg_catalog.format('REFRESH MATERIALIZED VIEW CONCURRENTLY %s', p_view);
    ELSE
      EXECUTE pg_catalog.format('REFRESH MATERIALIZED VIEW %s', p_view);
    END IF;
    EXECUTE pg_catalog.format('SELECT count(*) FROM %s', p_view) INTO row_count;
    UPDATE public.mv_refresh_log
      SET finished_at = pg_catalog.clock_timestamp(), status = 'succeeded', rows = row_count,
          duration_ms = 1000 * extract(epoch FROM pg_catalog.clock_timestamp() - started)
      WHERE id = log_id;
    outcome := pg_catalog.jsonb_build_object('view', p_view::text, 'status', 'succeeded', 'rows', row_count);
  EXCEPTION WHEN OTHERS THEN
    UPDATE public.mv_refresh_log
      SET finished_at = pg_catalog.clock_timestamp(), status = 'failed',
          error = SQLERRM || ' (SQLSTATE ' || SQLSTATE || ')',
          duration_ms = 1000 * extract(epoch FROM pg_catalog.clock_timestamp() - started)
      WHERE id = log_id;
    outcome := pg_catalog.jsonb_build_object('view', p_view::text, 'status', 'failed',
                                              'error', SQLERRM || ' (SQLSTATE ' || SQLSTATE || ')');
  END;
  RETURN outcome || pg_catalog.jsonb_build_object(
    'concurrent', use_concurrently,
    'duration_ms', 1000 * extract(epoch FROM pg_catalog.clock_timestamp() - started));
END
$$;

-- Runbook step 4: refreshes every materialized view of a schema, in creation
-- order (a view is created after the views it reads), pausing between two
-- refreshes so they do not pile up on the database.
CREATE FUNCTION public.refresh_materialized_views_staggered(pause_seconds double precision DEFAULT 2,
                                                           view_schema text DEFAULT 'public')
  RETURNS jsonb
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = ''
  AS $$
DECLARE
  started timestamptz := pg_catalog.clock_timestamp();
  view_oid oid;
  results jsonb := '[]';
  outcome jsonb;
  first boolean := true;
BEGIN
  IF pause_seconds IS NULL OR pause_seconds < 0 THEN
    RAISE EXCEPTION 'pause_seconds must be 0 or more, got %', pause_seconds USING ERRCODE = '22023';
  END IF;
  FOR view_oid IN
    SELECT c.oid FROM pg_catalog.pg_class c
    WHERE c.relkind = 'm' AND c.relnamespace = view_schema::regnamespace
    ORDER BY c.oid
  LOOP
    IF NOT first THEN
      PERFORM pg_catalog.pg_sleep(pause_seconds);
    END IF;
    first := false;
    outcome := slogate.refresh_view(view_oid::regclass, true);
    results := results || pg_catalog.jsonb_build_array(outcome);
  END LOOP;
  INSERT INTO public.audit_log (action, object, detail)
  VALUES ('refresh_materialized_views_staggered', view_schema,
          pg_catalog.jsonb_build_object('views', pg_catalog.jsonb_array_length(results)));
  RETURN pg_catalog.jsonb_build_object(
    'ok', NOT pg_catalog.jsonb_path_exists(results, '$[*] ? (@.status == "failed")'),
    'views', results,
    'failed', pg_catalog.jsonb_array_length(pg_catalog.jsonb_path_query_array(results, '$[*] ? (@.status == "failed")')),
    'pause_seconds', pause_seconds,
    'total_ms', 1000 * extract(epoch FROM pg_catalog.clock_timestamp() - started));
END
$$;

-- Load test step: refreshes the kit's analytics views (public.analytics_*)
-- CONCURRENTLY, so readers are never blocked, and says whether the whole
-- refresh stayed within the runbook's 5-minute budget.
CREATE FUNCTION public.refresh_analytics_views_concurrent(budget_seconds integer DEFAULT 300)
  RETURNS jsonb
  LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = ''
  AS $$
DECLARE
  started timestamptz := pg_catalog.clock_timestamp();
  view_oid oid;
  results jsonb := '[]';
  total_ms double precision;
BEGIN
  FOR view_oid IN
    SELECT c.oid FROM pg_catalog.pg_class c
    WHERE c.relkind = 'm' AND c.relnamespace = 'public'::regnamespace AND c.relname LIKE 'analytics\_%'
    ORDER BY c.oid
  LOOP
    results := results || pg_catalog.jsonb_build_array(slogate.refresh_view(view_oid::regclass, true));
  END LOOP;
  total_ms := 1000 * extract(epoch FROM pg_catalog.clock_timestamp() - started);
  RETURN pg_catalog.jsonb_build_object(
    'ok', NOT pg_catalog.jsonb_path_exists(results, '$[*] ? (@.status == "failed")') AND total_ms < budget_seconds * 1000.0,
    'views', results,
    'failed', pg_catalog.jsonb_array_length(pg_catalog.jsonb_path_query_array(results, '$[*] ? (@.status == "failed")')),
    'total_ms', total_ms,
    'budget_ms', budget_seconds * 1000,
    'within_budget', total_ms < budget_seconds * 1000.0);
END
$$;

-- Runbook step 3: drops the cache entries named by the invalidation queue, at
-- most `batch` queue rows per round, until the queue is empty or
-- `max_seconds` have passed. Each queue row is processed exactly once, also
-- with several callers at a time (FOR UPDATE SKIP LOCKED).
CREATE FUNCTION public.drain_cache_invalidation_queue(batch integer DEFAULT 100, max_seconds integer DEFAULT 60)
  RETURNS jsonb
  LANGUAGE plpgsql VOLATILE SET search_path = ''
  AS $$
DECLARE
  started timestamptz := pg_catalog.clock_timestamp();
  deadline timestamptz;
  rounds integer := 0;
  processed bigint := 0;
  invalidated bigint := 0;
  round_processed bigint;
  round_invalidated bigint;
  removed bigint;
  keys text[];
  prefixes text[];
  prefix text;
  stopped text := 'empty';
BEGIN
  IF batch IS NULL OR batch < 1 THEN
    RAISE EXCEPTION 'batch must be at least 1, got %', batch USING ERRCODE = '22023';
  END IF;
  IF max_seconds IS NULL OR max_seconds < 0 THEN
    RAISE EXCEPTION 'max_seconds must be 0 or more, got %', max_seconds USING ERRCODE = '22023';
  END IF;
  deadline := started + pg_catalog.make_interval(secs => max_seconds);
  LOOP
    IF pg_catalog.clock_timestamp() >= deadline THEN
      stopped := 'time';
      EXIT;
    END IF;
    WITH picked AS (
      SELECT q.id
      FROM public.cache_invalidation_queue q
      WHERE q.processed_at IS NULL
      ORDER BY q.id
      LIMIT batch
      FOR UPDATE SKIP LOCKED
    ), marked AS (
      UPDATE public.cache_invalidation_queue q
      SET processed_at = pg_catalog.clock_timestamp(), processed_by = pg_catalog.pg_backend_pid()
      FROM picked p
      WHERE q.id = p.id
      RETURNING q.cache_key, q.key_prefix
    )
    SELECT count(*),
           pg_catalog.array_agg(m.cache_key) FILTER (WHERE m.cache_key IS NOT NULL),
           pg_catalog.array_agg(DISTINCT m.key_prefix) FILTER (WHERE m.key_prefix IS NOT NULL)
    INTO round_processed, keys, prefixes
    FROM marked m;
    EXIT WHEN round_processed = 0;
    -- Exact keys through the primary key, each prefix through the pattern index:
    -- one OR-ed join would scan the whole cache every round.
    DELETE FROM public.query_cache c WHERE c.key = ANY (coalesce(keys, '{}'));
    GET DIAGNOSTICS round_invalidated = ROW_COUNT;
    FOREACH prefix IN ARRAY coalesce(prefixes, '{}') LOOP
      EXECUTE 'DELETE FROM public.query_cache c WHERE c.key LIKE $1'
        USING pg_catalog.replace(pg_catalog.replace(pg_catalog.replace(prefix, '\', '\\'), '%', '\%'), '_', '\_') || '%';
      GET DIAGNOSTICS removed = ROW_COUNT;
      round_invalidated := round_invalidated + removed;
    END LOOP;
    rounds := rounds + 1;
    processed := processed + round_processed;
    invalidated := invalidated + round_invalidated;
  END LOOP;
  RETURN pg_catalog.jsonb_build_object(
    'ok', true,
    'processed', processed,
    'invalidated', invalidated,
    'rounds', rounds,
    'remaining', (SELECT count(*) FROM public.cache_invalidation_queue q WHERE q.processed_at IS NULL),
    'stopped', stopped,
    'elapsed_ms', 1000 * extract(epoch FROM pg_catalog.clock_timestamp() - started));
END
$$;

-- Runbook step 4: recomputes the `n` most requested cached queries with their
-- registered warmer (public.cache_warmers) and stores them fresh.
CREATE FUNCTION public.warm_cache_top_queries(n integer DEFAULT 20)
  RETURNS jsonb
  LANGUAGE plpgsql VOLATILE SET search_path = ''
  AS $$
DECLARE
  started timestamptz := pg_catalog.clock_timestamp();
  candidate record;
  warmer regprocedure;
  fresh jsonb;
  warmed jsonb := '[]';
  failed jsonb := '[]';
BEGIN
  IF n IS NULL OR n < 0 THEN
    RAISE EXCEPTION 'n must be 0 or more, got %', n USING ERRCODE = '22023';
  END IF;
  FOR candidate IN
    SELECT s.key, s.query_name, s.params, s.requests, w.function_name, w.ttl
    FROM public.query_cache_stats s
    JOIN public.cache_warmers w ON w.query_name = s.query_name
    ORDER BY s.requests DESC, s.key
    LIMIT n
  LOOP
    warmer := pg_catalog.to_regprocedure(candidate.function_name || '(jsonb)');
    IF warmer IS NULL THEN
      failed := failed || pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(
        'key', candidate.key, 'error', 'warmer ' || candidate.function_name || '(jsonb) does not exist'));
      CONTINUE;
    END IF;
    BEGIN
      EXECUTE pg_catalog.format('SELECT %s($1)', warmer::regproc) INTO fresh USING candidate.params;
      INSERT INTO public.query_cache AS c (key, query_name, params, value, created_at, expires_at)
      VALUES (candidate.key, candidate.query_name, candidate.params, fresh, now(), now() + candidate.ttl)
      ON CONFLICT (key) DO UPDATE
        SET value = EXCLUDED.value, created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at;
      warmed := warmed || pg_catalog.to_jsonb(candidate.key);
    EXCEPTION WHEN OTHERS THEN
      failed := failed || pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object(
        'key', candidate.key, 'error', SQLERRM || ' (SQLSTATE ' || SQLSTATE || ')'));
    END;
  END LOOP;
  INSERT INTO public.audit_log (action, object, detail)
  VALUES ('warm_cache_top_queries', 'public.query_cache',
          pg_catalog.jsonb_build_object('warmed', pg_catalog.jsonb_array_length(warmed),
                                        'failed', pg_catalog.jsonb_array_length(failed)));
  RETURN pg_catalog.jsonb_build_object(
    'ok', pg_catalog.jsonb_array_length(failed) = 0,
    'requested', n,
    'warmed', pg_catalog.jsonb_array_length(warmed),
    'keys', warmed,
    'failed', failed,
    'elapsed_ms', 1000 * extract(epoch FROM pg_catalog.clock_timestamp() - started));
END
$$;

-- Rollback step 3: removes expired cache entries; returns how many.
CREATE FUNCTION public.clean_expired_cache()
  RETURNS bigint
  LANGUAGE plpgsql VOLATILE SET search_path = ''
  AS $$
DECLARE
  removed bigint;
BEGIN
  DELETE FROM public.query_cache c WHERE c.expires_at <= now();
  GET DIAGNOSTICS removed = ROW_COUNT;
  INSERT INTO public.audit_log (action, object, detail)
  VALUES ('clean_expired_cache', 'public.query_cache', pg_catalog.jsonb_build_object('removed', removed));
  RETURN removed;
END
$$;

REVOKE EXECUTE ON FUNCTION
  slogate.cache_get(text, text, jsonb),
  slogate.cache_put(text, text, jsonb, jsonb, interval),
  slogate.can_refresh_concurrently(regclass),
  slogate.refresh_view(regclass, boolean),
  public.refresh_materialized_views_staggered(double precision, text),
  public.refresh_analytics_views_concurrent(integer),
  public.drain_cache_invalidation_queue(integer, integer),
  public.warm_cache_top_queries(integer),
  public.clean_expired_cache()
  FROM public, anon, authenticated;
GRANT EXECUTE ON FUNCTION
  slogate.cache_get(text, text, jsonb),
  slogate.cache_put(text, text, jsonb, jsonb, interval),
  slogate.can_refresh_concurrently(regclass),
  slogate.refresh_view(regclass, boolean),
  public.refresh_materialized_views_staggered(double precision, text),
  public.refresh_analytics_views_concurrent(integer),
  public.drain_cache_invalidation_queue(integer, integer),
  public.warm_cache_top_queries(integer),
  public.clean_expired_cache()
  TO service_role;
