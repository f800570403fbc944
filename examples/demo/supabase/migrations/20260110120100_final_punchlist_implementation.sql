-- Runbook step 2: the punch list. Writes to documents invalidate the search
-- cache through the kit's queue and are audited; the search cache gets its
-- warmer; API roles lose the privileges RLS cannot guard (TRUNCATE) or that
-- anonymous users never need.

-- Trigger functions run as the writing user, who may not touch the kit's
-- tables: SECURITY DEFINER with an empty search_path, callable by nobody else.
CREATE FUNCTION public.documents_invalidate_search_cache()
  RETURNS trigger
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = ''
  AS $$
BEGIN
  INSERT INTO public.cache_invalidation_queue (key_prefix, reason)
  VALUES ('search:', TG_OP || ' on public.documents');
  RETURN NULL;
END
$$;

CREATE FUNCTION public.documents_audit()
  RETURNS trigger
  LANGUAGE plpgsql SECURITY DEFINER SET search_path = ''
  AS $$
BEGIN
  -- current_user is this function's owner here; the role the writer set is in the 'role' setting.
  INSERT INTO public.audit_log (actor, action, object, detail)
  VALUES (coalesce(nullif(pg_catalog.current_setting('role', true), 'none'), session_user),
          pg_catalog.lower(TG_OP), 'public.documents', pg_catalog.jsonb_build_object('sub', auth.uid()));
  RETURN NULL;
END
$$;

-- Statement-level, so a bulk load costs one queue row and one audit row.
CREATE TRIGGER documents_invalidate_search_cache
  AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON public.documents
  FOR EACH STATEMENT EXECUTE FUNCTION public.documents_invalidate_search_cache();
CREATE TRIGGER documents_audit
  AFTER INSERT OR UPDATE OR DELETE ON public.documents
  FOR EACH STATEMENT EXECUTE FUNCTION public.documents_audit();

-- Recomputes one cached search for warm_cache_top_queries(): params {"q", "limit"}.
-- The cache is shared by every user, so it holds public documents only.
CREATE FUNCTION public.search_documents_warm(params jsonb)
  RETURNS jsonb
  LANGUAGE sql STABLE SET search_path = ''
  AS $$
    SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.to_jsonb(r)), '[]'::jsonb)
    FROM public.search_documents(params ->> 'q', coalesce((params ->> 'limit')::integer, 20), true) AS r
  $$;
INSERT INTO public.cache_warmers (query_name, function_name, ttl)
VALUES ('search', 'public.search_documents_warm', interval '15 minutes');

REVOKE EXECUTE ON FUNCTION public.documents_invalidate_search_cache(), public.documents_audit(),
  public.search_documents_warm(jsonb) FROM public, anon, authenticated;
GRANT EXECUTE ON FUNCTION public.search_documents_warm(jsonb) TO service_role;

-- RLS does not apply to TRUNCATE, and anonymous visitors only read.
REVOKE TRUNCATE ON public.documents FROM anon, authenticated;
REVOKE INSERT, UPDATE, DELETE ON public.documents FROM anon;
