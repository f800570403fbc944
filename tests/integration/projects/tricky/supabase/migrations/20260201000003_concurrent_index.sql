ALTER TABLE public.accounts ADD COLUMN created_at timestamptz NOT NULL DEFAULT now();
CREATE INDEX CONCURRENTLY accounts_created_at_idx ON public.accounts (created_at);
COMMENT ON INDEX public.accounts_created_at_idx IS 'built without blocking writes';
