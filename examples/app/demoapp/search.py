"""Search over public.documents: the cache key contract and the SQL.

A search has a public part, shared by every user and cached, and (for a
signed-in caller, scope 'all') the caller's own private documents, always
read fresh and merged in. The cache therefore only ever holds public
documents, and a user still finds their private ones.

The cache key and params are the ones public.search_documents_warm(params)
recomputes after a deploy: key 'search:<normalized q>:<limit>', params
{"q", "limit"}.
"""

import json

DEFAULT_LIMIT = 20
MAX_LIMIT = 100  # search_documents() caps there too
MAX_QUERY_LENGTH = 200
SCOPES = ("public", "all")

SEARCH_FUNCTION = "public.search_documents(text,integer,boolean)"
SEARCH_FUNCTION_EXISTS = "SELECT pg_catalog.to_regprocedure(%s::text) IS NOT NULL"

# --- the public part ---------------------------------------------------------

# After migration 20260110120000: full-text search, ranked. The same
# expression as public.search_documents_warm(), so a warmed cache entry and
# one the app stored are alike.
PUBLIC_RANKED = (
    "SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.to_jsonb(r)), '[]'::jsonb)"
    " FROM public.search_documents(%(q)s, %(limit)s, true) AS r")

# Before it: every word somewhere in the title or body, newest first, no rank.
PUBLIC_FALLBACK = (
    "SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.to_jsonb(r) ORDER BY r.created_at DESC, r.id), '[]'::jsonb)"
    " FROM (SELECT d.id, d.title, d.tags, NULL::real AS rank, d.created_at"
    "       FROM public.documents d"
    "       WHERE d.is_public"
    "         AND NOT EXISTS (SELECT 1 FROM pg_catalog.unnest(%(patterns)s::text[]) AS w(pattern)"
    "                         WHERE NOT (d.title ILIKE w.pattern OR d.body ILIKE w.pattern))"
    "       ORDER BY d.created_at DESC, d.id"
    "       LIMIT %(limit)s) AS r")

# --- the caller's private documents, merged into the public part --------------
# Only the caller's rows (owner_id = auth.uid(), through documents_owner_id_idx),
# so this stays cheap whatever the public part cost. Rows are ordered as the
# public part is, and the merged list is cut to the limit again.

PUBLIC_ROWS = ("SELECT p.id, p.title, p.tags, p.rank, p.created_at FROM pg_catalog.jsonb_to_recordset(%(public)s::jsonb)"
               " AS p(id bigint, title text, tags text[], rank real, created_at timestamptz)")

# rank as public.search_documents() computes it, so both parts compare.
MERGE_RANKED = (
    "SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.to_jsonb(m) ORDER BY m.rank DESC NULLS LAST, m.id), '[]'::jsonb)"
    " FROM (SELECT * FROM (" + PUBLIC_ROWS +
    "       UNION ALL"
    "       SELECT d.id, d.title, d.tags, pg_catalog.ts_rank(d.search_vector, query), d.created_at"
    "       FROM public.documents d, pg_catalog.websearch_to_tsquery('english', %(q)s) AS query"
    "       WHERE d.owner_id = (SELECT auth.uid()) AND NOT d.is_public AND d.search_vector @@ query) AS u"
    "       ORDER BY u.rank DESC NULLS LAST, u.id LIMIT %(limit)s) AS m")

MERGE_FALLBACK = (
    "SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.to_jsonb(m) ORDER BY m.created_at DESC, m.id), '[]'::jsonb)"
    " FROM (SELECT * FROM (" + PUBLIC_ROWS +
    "       UNION ALL"
    "       SELECT d.id, d.title, d.tags, NULL::real, d.created_at"
    "       FROM public.documents d"
    "       WHERE d.owner_id = (SELECT auth.uid()) AND NOT d.is_public"
    "         AND NOT EXISTS (SELECT 1 FROM pg_catalog.unnest(%(patterns)s::text[]) AS w(pattern)"
    "                         WHERE NOT (d.title ILIKE w.pattern OR d.body ILIKE w.pattern))) AS u"
    "       ORDER BY u.created_at DESC, u.id LIMIT %(limit)s) AS m")

# --- the cache: kit functions, EXECUTE-granted to service_role only ------------

AS_SERVICE_ROLE = "SET LOCAL ROLE service_role"
CACHE_GET = "SELECT slogate.cache_get(%s, 'search', %s::jsonb)"
CACHE_PUT = ("SELECT slogate.cache_put(%s, 'search', %s::jsonb, %s::jsonb,"
             " pg_catalog.make_interval(secs => %s))")


class BadSearch(ValueError):
    """A query parameter the client got wrong (answered 400)."""


def normalize(q):
    """The query as it is searched and cached: trimmed, single-spaced, lower case
    (both search forms ignore case, so 'Cache' and 'cache ' share one entry)."""
    return " ".join(q.split()).lower()


def cache_entry(q, limit):
    """(key, params) of a normalized query, as search_documents_warm() expects them."""
    return "search:%s:%d" % (q, limit), {"q": q, "limit": limit}


def like_patterns(q):
    """One ILIKE pattern per word, with LIKE's wildcards taken literally."""
    escaped = (w.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") for w in q.split())
    return ["%" + w + "%" for w in escaped]


def public_query(ranked, q, limit):
    """(sql, params) of the public part."""
    if ranked:
        return PUBLIC_RANKED, {"q": q, "limit": limit}
    return PUBLIC_FALLBACK, {"patterns": like_patterns(q), "limit": limit}


def merge_query(ranked, q, limit, public):
    """(sql, params) that add the caller's private matches to the public part `public`."""
    if ranked:
        return MERGE_RANKED, {"public": json.dumps(public), "q": q, "limit": limit}
    return MERGE_FALLBACK, {"public": json.dumps(public), "patterns": like_patterns(q), "limit": limit}


def parse_params(query_params, role):
    """(q, limit, scope) from the query string, or BadSearch.

    scope 'public': public documents only, the shared cached answer.
    scope 'all' (the default with a token): the same plus the caller's own
    private documents. Anonymous callers own nothing: always 'public'.
    """
    q = normalize(query_params.get("q", ""))
    if not q:
        raise BadSearch("q is required")
    if len(q) > MAX_QUERY_LENGTH:
        raise BadSearch("q is longer than %d characters" % MAX_QUERY_LENGTH)
    text = query_params.get("limit", "").strip()
    try:
        limit = int(text) if text else DEFAULT_LIMIT
    except ValueError:
        raise BadSearch("limit must be a whole number") from None
    if not 1 <= limit <= MAX_LIMIT:
        raise BadSearch("limit must be 1..%d" % MAX_LIMIT)
    scope = query_params.get("scope", "").strip() or ("public" if role == "anon" else "all")
    if scope not in SCOPES:
        raise BadSearch("scope must be public or all")
    if role == "anon":
        scope = "public"
    return q, limit, scope
