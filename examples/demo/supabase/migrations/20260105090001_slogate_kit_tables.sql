-- slogate.supabase kit 1/4: the tables the deployment runbook reads and writes.
--
-- Every table in public has RLS enabled with explicit policies: the API roles
-- see rows only when the JWT says admin (app_metadata.admin = true); the
-- deploy (postgres) and the app's server side (service_role) are not limited.

CREATE SCHEMA slogate;
COMMENT ON SCHEMA slogate IS 'slogate.supabase kit internals; not exposed through the API';
GRANT USAGE ON SCHEMA slogate TO authenticated, service_role;

-- True when the request's JWT marks an administrator. app_metadata, unlike
-- user_metadata, cannot be changed by the user.
CREATE FUNCTION slogate.is_admin() RETURNS boolean
  LANGUAGE sql STABLE SET search_path = ''
  AS $$
    SELECT coalesce((auth.jwt() -> 'app_metadata' ->> 'admin') = 'true', false)
  $$;
REVOKE EXECUTE ON FUNCTION slogate.is_admin() FROM public;
GRANT EXECUTE ON FUNCTION slogate.is_admin() TO authenticated, service_role;

-- One row per API request, written by the app in batches.
CREATE TABLE public.performance_metrics (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  created_at timestamptz NOT NULL DEFAULT now(),
  endpoint text NOT NULL,
  method text NOT NULL DEFAULT 'GET',
  status integer,  -- NULL or 0: no response (timeout, refused connection)
  duration_ms double precision NOT NULL CHECK (duration_ms >= 0),
  cache_hit boolean NOT NULL DEFAULT false,
  user_role text,
  release_id text
);
COMMENT ON TABLE public.performance_metrics IS 'One row per API request; the SLO views bucket it by date_bin';
CREATE INDEX performance_metrics_created_at_idx ON public.performance_metrics (created_at);
-- Lets "WHERE bucket > ..." on the 5-minute views use an index.
CREATE INDEX performance_metrics_bucket_5m_idx
  ON public.performance_metrics (date_bin('5 minutes', created_at, TIMESTAMPTZ '1970-01-01 00:00:00+00'));

-- Cached query results, by key.
CREATE TABLE public.query_cache (
  key text PRIMARY KEY,
  query_name text NOT NULL,
  params jsonb NOT NULL DEFAULT '{}',
  value jsonb NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  hits bigint NOT NULL DEFAULT 0,
  last_hit_at timestamptz
);
CREATE INDEX query_cache_expires_at_idx ON public.query_cache (expires_at);
-- Serves the invalidation queue's key prefixes (key LIKE 'search:%').
CREATE INDEX query_cache_key_pattern_idx ON public.query_cache (key text_pattern_ops);

-- How often each key was asked for, kept when the cache is emptied, so the
-- warm-up after a deploy or rollback knows the top queries.
CREATE TABLE public.query_cache_stats (
  key text PRIMARY KEY,
  query_name text NOT NULL,
  params jsonb NOT NULL DEFAULT '{}',
  requests bigint NOT NULL DEFAULT 0,
  last_requested_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX query_cache_stats_requests_idx ON public.query_cache_stats (requests DESC);

-- Which function recomputes a cached query: function_name(params jsonb) returns jsonb.
CREATE TABLE public.cache_warmers (
  query_name text PRIMARY KEY,
  function_name text NOT NULL,
  ttl interval NOT NULL DEFAULT interval '15 minutes'
);

-- Keys (or key prefixes) to drop from the cache, drained by the cache worker.
CREATE TABLE public.cache_invalidation_queue (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  cache_key text,
  key_prefix text,
  reason text,
  enqueued_at timestamptz NOT NULL DEFAULT now(),
  processed_at timestamptz,
  processed_by integer,
  CHECK (cache_key IS NOT NULL OR key_prefix IS NOT NULL)
);
CREATE INDEX cache_invalidation_queue_pending_idx
  ON public.cache_invalidation_queue (id) WHERE processed_at IS NULL;

-- One row per materialized view refresh, with its timing and outcome.
CREATE TABLE public.mv_refresh_log (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  view_name text NOT NULL,
  started_at timestamptz NOT NULL DEFAULT clock_timestamp(),
  finished_at timestamptz,
  duration_ms double precision,
  status text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'succeeded', 'failed')),
  concurrent boolean NOT NULL DEFAULT false,
  rows bigint,
  error text
);
CREATE INDEX mv_refresh_log_started_at_idx ON public.mv_refresh_log (started_at);

-- What the kit's maintenance functions did, and who asked.
CREATE TABLE public.audit_log (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  occurred_at timestamptz NOT NULL DEFAULT now(),
  actor text NOT NULL DEFAULT current_user,
  action text NOT NULL,
  object text,
  detail jsonb NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_occurred_at_idx ON public.audit_log (occurred_at);

-- RLS: admins may read every kit table through the API; nobody may write
-- through it. One permissive policy per role and action.
ALTER TABLE public.performance_metrics ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.query_cache ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.query_cache_stats ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.cache_warmers ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.cache_invalidation_queue ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.mv_refresh_log ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.audit_log ENABLE ROW LEVEL SECURITY;

CREATE POLICY performance_metrics_admin_read ON public.performance_metrics
  FOR SELECT TO authenticated USING ((SELECT slogate.is_admin()));
CREATE POLICY query_cache_admin_read ON public.query_cache
  FOR SELECT TO authenticated USING ((SELECT slogate.is_admin()));
CREATE POLICY query_cache_stats_admin_read ON public.query_cache_stats
  FOR SELECT TO authenticated USING ((SELECT slogate.is_admin()));
CREATE POLICY cache_warmers_admin_read ON public.cache_warmers
  FOR SELECT TO authenticated USING ((SELECT slogate.is_admin()));
CREATE POLICY cache_invalidation_queue_admin_read ON public.cache_invalidation_queue
  FOR SELECT TO authenticated USING ((SELECT slogate.is_admin()));
CREATE POLICY mv_refresh_log_admin_read ON public.mv_refresh_log
  FOR SELECT TO authenticated USING ((SELECT slogate.is_admin()));
CREATE POLICY audit_log_admin_read ON public.audit_log
  FOR SELECT TO authenticated USING ((SELECT slogate.is_admin()));

REVOKE ALL ON public.performance_metrics, public.query_cache, public.query_cache_stats, public.cache_warmers,
  public.cache_invalidation_queue, public.mv_refresh_log, public.audit_log FROM anon, authenticated;
GRANT SELECT ON public.performance_metrics, public.query_cache, public.query_cache_stats, public.cache_warmers,
  public.cache_invalidation_queue, public.mv_refresh_log, public.audit_log TO authenticated;
GRANT ALL ON public.performance_metrics, public.query_cache, public.query_cache_stats, public.cache_warmers,
  public.cache_invalidation_queue, public.mv_refresh_log, public.audit_log TO service_role;
