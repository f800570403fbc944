-- Demo release 3: search suggestions, the terms people search most, shown as
-- they type. Readable by everybody; written by the service only.

CREATE TABLE public.search_suggestions (
  term text PRIMARY KEY,
  searches bigint NOT NULL DEFAULT 0,
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX search_suggestions_searches_idx ON public.search_suggestions (searches DESC);

ALTER TABLE public.search_suggestions ENABLE ROW LEVEL SECURITY;
CREATE POLICY search_suggestions_read ON public.search_suggestions
  FOR SELECT TO anon, authenticated
  USING (true);
REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON public.search_suggestions FROM anon, authenticated;

INSERT INTO public.search_suggestions (term, searches)
SELECT s.key, s.requests FROM (
  SELECT params ->> 'q' AS key, sum(requests) AS requests
  FROM public.query_cache_stats
  WHERE query_name = 'search' AND params ? 'q'
  GROUP BY 1
) s
WHERE s.key IS NOT NULL;
