-- Runbook step 1: faster search. Full-text search over title and body with a
-- GIN index, tag and recency indexes, a search function, and an analytics
-- materialized view of the tags (refreshed CONCURRENTLY by the kit).

ALTER TABLE public.documents
  ADD COLUMN search_vector tsvector GENERATED ALWAYS AS (
    setweight(to_tsvector('english', coalesce(title, '')), 'A') ||
    setweight(to_tsvector('english', coalesce(body, '')), 'B')) STORED;
CREATE INDEX documents_search_vector_idx ON public.documents USING gin (search_vector);
CREATE INDEX documents_tags_idx ON public.documents USING gin (tags);
CREATE INDEX documents_created_at_idx ON public.documents (created_at DESC);

-- Runs with the caller's rights: RLS decides which documents a user finds.
-- public_only limits it to public documents, for results shared between users (the cache).
CREATE FUNCTION public.search_documents(q text, max_results integer DEFAULT 20, public_only boolean DEFAULT false)
  RETURNS TABLE (id bigint, title text, tags text[], rank real, created_at timestamptz)
  LANGUAGE sql STABLE SET search_path = ''
  AS $$
    SELECT d.id, d.title, d.tags, ts_rank(d.search_vector, query) AS rank, d.created_at
    FROM public.documents d, websearch_to_tsquery('english', q) AS query
    WHERE d.search_vector @@ query AND (d.is_public OR NOT public_only)
    ORDER BY rank DESC, d.id
    LIMIT least(greatest(max_results, 1), 100)
  $$;

CREATE MATERIALIZED VIEW public.analytics_document_tags AS
SELECT tag, count(*) AS documents, max(d.created_at) AS last_created_at
FROM public.documents d, unnest(d.tags) AS tag
WHERE d.is_public
GROUP BY tag;
CREATE UNIQUE INDEX analytics_document_tags_key ON public.analytics_document_tags (tag);
REVOKE ALL ON public.analytics_document_tags FROM anon, authenticated;
GRANT SELECT ON public.analytics_document_tags TO service_role;
