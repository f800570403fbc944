-- The runbook's database load test, as a pgbench script: each transaction is
-- one search the way the demo app serves it (examples/app/demoapp/search.py):
-- read the shared cache, and on a miss run the search and store the result.
--
--   python tests/load/pgbench_report.py --url "$DATABASE_URL" \
--       --file tests/load/db-performance-enhanced.sql --seconds 60 --clients 8
--   pgbench -n -f tests/load/db-performance-enhanced.sql -c 8 -T 60 "$DATABASE_URL"
--
-- pgbench syntax (\set with random(), \gset, \if): psql cannot run it.
-- Needs the demo schema (public.search_documents) and the slogate kit
-- (slogate.cache_get/cache_put, EXECUTE granted to service_role): connect as
-- the database owner or a member of service_role.
-- The terms are those of tests/load/locustfile.py and search-performance-enhanced.js.

\set term random(1, 20)
SELECT (slogate.cache_get('search:' || t.q || ':20', 'search',
                          pg_catalog.jsonb_build_object('q', t.q, 'limit', 20)) IS NOT NULL)::int AS hit
  FROM (SELECT (ARRAY['postgres', 'performance', 'security', 'caching', 'migrations', 'search', 'indexes',
                    'monitoring', 'backup', 'rollback', 'materialized views', 'connection pool',
                    'row level security', 'latency', 'vacuum', 'deploy', 'runbook', 'replica',
                    'audit log', 'full-text search'])[:term] AS q) AS t
\gset
\if :hit = 0
SELECT slogate.cache_put('search:' || t.q || ':20', 'search', pg_catalog.jsonb_build_object('q', t.q, 'limit', 20),
                         (SELECT coalesce(pg_catalog.jsonb_agg(pg_catalog.to_jsonb(r)), '[]'::jsonb)
                            FROM public.search_documents(t.q, 20, true) AS r),
                         interval '15 minutes')
  FROM (SELECT (ARRAY['postgres', 'performance', 'security', 'caching', 'migrations', 'search', 'indexes',
                    'monitoring', 'backup', 'rollback', 'materialized views', 'connection pool',
                    'row level security', 'latency', 'vacuum', 'deploy', 'runbook', 'replica',
                    'audit log', 'full-text search'])[:term] AS q) AS t;
\endif
