"""The slogate demo app: a small Supabase-style API over public.documents that
the collection deploys, smoke-tests, loads and rolls back (see ../README.md)."""
