DROP INDEX CONCURRENTLY public.accounts_created_at_idx;
ALTER TABLE public.accounts DROP COLUMN created_at;
