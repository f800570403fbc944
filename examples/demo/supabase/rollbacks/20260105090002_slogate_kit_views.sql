-- Undoes 20260101000200_slogate_kit_views.sql.
DROP MATERIALIZED VIEW public.analytics_slo_daily;
DROP MATERIALIZED VIEW public.analytics_endpoint_hourly;
DROP VIEW public.performance_analytics_5min;
DROP VIEW public.api_metrics_5m;
