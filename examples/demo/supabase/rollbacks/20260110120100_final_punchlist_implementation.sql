-- Undoes 20260110120100_final_punchlist_implementation.sql. Gives back the
-- privileges it revoked (Supabase grants them on every new table in public).
GRANT INSERT, UPDATE, DELETE ON public.documents TO anon;
GRANT TRUNCATE ON public.documents TO anon, authenticated;
DELETE FROM public.cache_warmers WHERE query_name = 'search';
DROP FUNCTION public.search_documents_warm(jsonb);
DROP TRIGGER documents_audit ON public.documents;
DROP TRIGGER documents_invalidate_search_cache ON public.documents;
DROP FUNCTION public.documents_audit();
DROP FUNCTION public.documents_invalidate_search_cache();
