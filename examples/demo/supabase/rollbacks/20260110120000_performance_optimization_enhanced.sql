-- Undoes 20260110120000_performance_optimization_enhanced.sql. No data is lost:
-- the search vector is computed from title and body.
DROP MATERIALIZED VIEW public.analytics_document_tags;
DROP FUNCTION public.search_documents(text, integer, boolean);
DROP INDEX public.documents_created_at_idx;
DROP INDEX public.documents_tags_idx;
DROP INDEX public.documents_search_vector_idx;
ALTER TABLE public.documents DROP COLUMN search_vector;
