-- Undoes 20260101000300_slogate_kit_functions.sql.
DROP FUNCTION public.clean_expired_cache();
DROP FUNCTION public.warm_cache_top_queries(integer);
DROP FUNCTION public.drain_cache_invalidation_queue(integer, integer);
DROP FUNCTION public.refresh_analytics_views_concurrent(integer);
DROP FUNCTION public.refresh_materialized_views_staggered(double precision, text);
DROP FUNCTION slogate.refresh_view(regclass, boolean);
DROP FUNCTION slogate.can_refresh_concurrently(regclass);
DROP FUNCTION slogate.cache_put(text, text, jsonb, jsonb, interval);
DROP FUNCTION slogate.cache_get(text, text, jsonb);
