-- slogate.supabase bootstrap for plain PostgreSQL.
--
-- Creates the parts of a Supabase database the kit relies on, each only when
-- absent, so it is a no-op on a real Supabase project and safe to re-run:
-- the API roles, the auth schema with auth.uid(), auth.role() and auth.jwt()
-- reading the request.jwt.claims setting (as PostgREST sets it), and
-- Supabase's default grants on new objects in public (RLS, not grants, is
-- what protects rows there).

DO $bootstrap$
DECLARE
  wanted text[][] := ARRAY[
    ARRAY['anon', 'NOLOGIN NOINHERIT'],
    ARRAY['authenticated', 'NOLOGIN NOINHERIT'],
    ARRAY['service_role', 'NOLOGIN NOINHERIT BYPASSRLS'],
    ARRAY['authenticator', 'LOGIN NOINHERIT']];
  i integer;
BEGIN
  FOR i IN 1 .. array_length(wanted, 1) LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = wanted[i][1]) THEN
      BEGIN
        EXECUTE format('CREATE ROLE %I %s', wanted[i][1], wanted[i][2]);
      EXCEPTION WHEN duplicate_object OR unique_violation THEN
        NULL;  -- created meanwhile by a concurrent bootstrap of another database
      END;
    END IF;
  END LOOP;
END
$bootstrap$;

GRANT anon, authenticated, service_role TO authenticator;

CREATE SCHEMA IF NOT EXISTS auth;
GRANT USAGE ON SCHEMA auth TO anon, authenticated, service_role;
GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role;

DO $bootstrap$
BEGIN
  IF pg_catalog.to_regprocedure('auth.jwt()') IS NULL THEN
    CREATE FUNCTION auth.jwt() RETURNS jsonb
      LANGUAGE sql STABLE SET search_path = ''
      AS $f$
        SELECT coalesce(
          nullif(pg_catalog.current_setting('request.jwt.claim', true), ''),
          nullif(pg_catalog.current_setting('request.jwt.claims', true), ''))::jsonb
      $f$;
  END IF;
  IF pg_catalog.to_regprocedure('auth.uid()') IS NULL THEN
    CREATE FUNCTION auth.uid() RETURNS uuid
      LANGUAGE sql STABLE SET search_path = ''
      AS $f$
        SELECT coalesce(
          nullif(pg_catalog.current_setting('request.jwt.claim.sub', true), ''),
          nullif(pg_catalog.current_setting('request.jwt.claims', true), '')::jsonb ->> 'sub')::uuid
      $f$;
  END IF;
  IF pg_catalog.to_regprocedure('auth.role()') IS NULL THEN
    CREATE FUNCTION auth.role() RETURNS text
      LANGUAGE sql STABLE SET search_path = ''
      AS $f$
        SELECT coalesce(
          nullif(pg_catalog.current_setting('request.jwt.claim.role', true), ''),
          nullif(pg_catalog.current_setting('request.jwt.claims', true), '')::jsonb ->> 'role')::text
      $f$;
  END IF;
END
$bootstrap$;

GRANT EXECUTE ON FUNCTION auth.jwt(), auth.uid(), auth.role() TO anon, authenticated, service_role;

-- Supabase grants the API roles access to new objects in public by default.
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON TABLES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON SEQUENCES TO anon, authenticated, service_role;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT ALL ON FUNCTIONS TO anon, authenticated, service_role;
