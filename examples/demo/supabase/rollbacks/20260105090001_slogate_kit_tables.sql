-- Undoes 20260101000100_slogate_kit_tables.sql. Drops the kit's tables and their data.
DROP TABLE public.audit_log;
DROP TABLE public.mv_refresh_log;
DROP TABLE public.cache_invalidation_queue;
DROP TABLE public.cache_warmers;
DROP TABLE public.query_cache_stats;
DROP TABLE public.query_cache;
DROP TABLE public.performance_metrics;
DROP FUNCTION slogate.is_admin();
DROP SCHEMA slogate;
