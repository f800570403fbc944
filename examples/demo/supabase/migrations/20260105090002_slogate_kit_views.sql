-- slogate.supabase kit 2/4: SLO views and the analytics materialized views.
--
-- Buckets are [start, start + width) on a grid aligned to the Unix epoch.
-- An error is a status >= 500 or no response at all (status 0 or NULL);
-- 4xx are client outcomes. Rates are percentages (1 means 1 %).
-- The views run with the caller's rights (security_invoker), so the
-- admin-only RLS policy of performance_metrics applies through them.

CREATE VIEW public.api_metrics_5m WITH (security_invoker = true) AS
SELECT date_bin('5 minutes', m.created_at, TIMESTAMPTZ '1970-01-01 00:00:00+00') AS bucket,
       count(*) AS requests,
       count(*) FILTER (WHERE m.status IS NULL OR m.status = 0 OR m.status >= 500) AS errors,
       100.0 * count(*) FILTER (WHERE m.status IS NULL OR m.status = 0 OR m.status >= 500) / count(*) AS err_rate,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY m.duration_ms) AS p95_ms,
       percentile_cont(0.99) WITHIN GROUP (ORDER BY m.duration_ms) AS p99_ms
FROM public.performance_metrics m
GROUP BY 1;
COMMENT ON VIEW public.api_metrics_5m IS 'Requests, errors, err_rate (%), p95_ms and p99_ms per 5-minute bucket';

CREATE VIEW public.performance_analytics_5min WITH (security_invoker = true) AS
SELECT date_bin('5 minutes', m.created_at, TIMESTAMPTZ '1970-01-01 00:00:00+00') AS bucket,
       count(*) AS requests,
       avg(m.duration_ms) AS avg_ms,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY m.duration_ms) AS p95_ms,
       percentile_cont(0.99) WITHIN GROUP (ORDER BY m.duration_ms) AS p99_ms,
       count(*) FILTER (WHERE m.cache_hit) AS cache_hits,
       100.0 * count(*) FILTER (WHERE m.cache_hit) / count(*) AS cache_hit_rate_percent
FROM public.performance_metrics m
GROUP BY 1;
COMMENT ON VIEW public.performance_analytics_5min IS 'Latency percentiles and cache hit rate (%) per 5-minute bucket';

REVOKE ALL ON public.api_metrics_5m, public.performance_analytics_5min FROM anon, authenticated;
GRANT SELECT ON public.api_metrics_5m, public.performance_analytics_5min TO authenticated, service_role;

-- Hourly figures per endpoint; the unique index allows REFRESH ... CONCURRENTLY.
CREATE MATERIALIZED VIEW public.analytics_endpoint_hourly AS
SELECT date_bin('1 hour', m.created_at, TIMESTAMPTZ '1970-01-01 00:00:00+00') AS bucket,
       m.endpoint,
       m.method,
       count(*) AS requests,
       count(*) FILTER (WHERE m.status IS NULL OR m.status = 0 OR m.status >= 500) AS errors,
       100.0 * count(*) FILTER (WHERE m.status IS NULL OR m.status = 0 OR m.status >= 500) / count(*) AS err_rate,
       avg(m.duration_ms) AS avg_ms,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY m.duration_ms) AS p95_ms,
       percentile_cont(0.99) WITHIN GROUP (ORDER BY m.duration_ms) AS p99_ms,
       100.0 * count(*) FILTER (WHERE m.cache_hit) / count(*) AS cache_hit_rate_percent
FROM public.performance_metrics m
GROUP BY 1, 2, 3;
CREATE UNIQUE INDEX analytics_endpoint_hourly_key ON public.analytics_endpoint_hourly (bucket, endpoint, method);

-- Daily SLO figures for all endpoints together.
CREATE MATERIALIZED VIEW public.analytics_slo_daily AS
SELECT date_bin('1 day', m.created_at, TIMESTAMPTZ '1970-01-01 00:00:00+00') AS day,
       count(*) AS requests,
       count(*) FILTER (WHERE m.status IS NULL OR m.status = 0 OR m.status >= 500) AS errors,
       100.0 * count(*) FILTER (WHERE m.status IS NULL OR m.status = 0 OR m.status >= 500) / count(*) AS err_rate,
       percentile_cont(0.95) WITHIN GROUP (ORDER BY m.duration_ms) AS p95_ms,
       percentile_cont(0.99) WITHIN GROUP (ORDER BY m.duration_ms) AS p99_ms,
       100.0 * count(*) FILTER (WHERE m.cache_hit) / count(*) AS cache_hit_rate_percent
FROM public.performance_metrics m
GROUP BY 1;
CREATE UNIQUE INDEX analytics_slo_daily_key ON public.analytics_slo_daily (day);

-- Materialized views bypass RLS: only the server side may read them.
REVOKE ALL ON public.analytics_endpoint_hourly, public.analytics_slo_daily FROM anon, authenticated;
GRANT SELECT ON public.analytics_endpoint_hourly, public.analytics_slo_daily TO service_role;
