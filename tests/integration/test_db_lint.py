"""tests/support/db_lint.py: each rule finds a deliberately bad object, and not its fixed version."""

import subprocess
import sys

import psycopg2
import pytest

import db_lint
from db_lint import ERROR, INFO, WARN, lint

pytestmark = pytest.mark.integration

LINT_SCRIPT = str(db_lint.__file__)

LEVELS = {
    "rls_disabled_in_public": ERROR,
    "policy_exists_rls_disabled": ERROR,
    "rls_enabled_no_policy": INFO,
    "auth_rls_initplan": WARN,
    "multiple_permissive_policies": WARN,
    "rls_references_user_metadata": ERROR,
    "rls_policy_always_true": WARN,
    "security_definer_view": ERROR,
    "materialized_view_in_api": WARN,
    "foreign_table_in_api": WARN,
    "sensitive_columns_exposed": ERROR,
    "pg_graphql_anon_table_exposed": WARN,
    "pg_graphql_authenticated_table_exposed": WARN,
    "auth_users_exposed": ERROR,
    "insecure_queue_exposed_in_api": ERROR,
    "function_search_path_mutable": WARN,
    "anon_security_definer_function_executable": WARN,
    "authenticated_security_definer_function_executable": WARN,
    "unindexed_foreign_keys": INFO,
    "no_primary_key": INFO,
    "duplicate_index": WARN,
    "unsupported_reg_types": WARN,
    "fkey_to_auth_unique": ERROR,
    "extension_in_public": WARN,
    "extension_versions_outdated": WARN,
    "public_bucket_allows_listing": WARN,
}

# Roles are cluster-wide and shared by the tests (and by the two test workers): create them
# when missing, never drop them, and with the attributes the kit's bootstrap gives them
# (service_role bypasses RLS), since the kit's tests on the same server rely on those.
SUPABASE_ROLES = """
DO $$
DECLARE r text[];
BEGIN
  FOREACH r SLICE 1 IN ARRAY ARRAY[['anon', 'NOLOGIN NOINHERIT'], ['authenticated', 'NOLOGIN NOINHERIT'],
                                  ['service_role', 'NOLOGIN NOINHERIT BYPASSRLS']] LOOP
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r[1]) THEN
      BEGIN
        EXECUTE format('CREATE ROLE %I %s', r[1], r[2]);
      EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
      END;
    END IF;
  END LOOP;
END $$;
"""

AUTH_SCHEMA = """
CREATE SCHEMA auth;
CREATE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE SET search_path = ''
  AS $$ SELECT nullif(current_setting('request.jwt.claim.sub', true), '')::uuid $$;
CREATE FUNCTION auth.role() RETURNS text LANGUAGE sql STABLE SET search_path = ''
  AS $$ SELECT nullif(current_setting('request.jwt.claim.role', true), '')::text $$;
CREATE FUNCTION auth.jwt() RETURNS jsonb LANGUAGE sql STABLE SET search_path = ''
  AS $$ SELECT coalesce(nullif(current_setting('request.jwt.claims', true), ''), '{}')::jsonb $$;
CREATE FUNCTION auth.email() RETURNS text LANGUAGE sql STABLE SET search_path = ''
  AS $$ SELECT auth.jwt() ->> 'email' $$;
"""


@pytest.fixture
def roles(pg_db):
    pg_db.execute(SUPABASE_ROLES)
    return pg_db


@pytest.fixture
def auth(roles):
    roles.execute(AUTH_SCHEMA)
    return roles


def found(db, rule, **options):
    """The objects `rule` reports, checking the level of each finding on the way."""
    hits = [f for f in lint(db.url, **options) if f.name == rule]
    for finding in hits:
        assert finding.level == LEVELS[rule], finding
        assert finding.title and finding.detail
    return {f.object for f in hits}


def bad_then_fixed(db, rule, obj, fix, **options):
    assert obj in found(db, rule, **options)
    db.execute(fix)
    assert obj not in found(db, rule, **options)


def test_every_rule_has_its_splinter_level():
    assert {r.name: r.level for r in db_lint.RULES} == LEVELS
    assert len({r.name for r in db_lint.RULES}) == len(db_lint.RULES)


# --------------------------------------------------------------------------- RLS

def test_rls_disabled_in_public(roles):
    roles.execute("""
        CREATE TABLE public.items (id int PRIMARY KEY);
        GRANT SELECT ON public.items TO anon;
        CREATE TABLE public.back_office (id int PRIMARY KEY);
        CREATE SCHEMA private;
        CREATE TABLE private.notes (id int PRIMARY KEY);
        GRANT SELECT ON private.notes TO authenticated;
    """)
    hits = found(roles, "rls_disabled_in_public")
    assert "public.items" in hits
    assert "public.back_office" not in hits  # neither anon nor authenticated can read it
    assert "private.notes" not in hits  # not an exposed schema
    assert "private.notes" in found(roles, "rls_disabled_in_public", schemas=("public", "private"))
    bad_then_fixed(roles, "rls_disabled_in_public", "public.items", "ALTER TABLE public.items ENABLE ROW LEVEL SECURITY")


def test_rls_disabled_in_public_counts_grants_to_public(roles):
    roles.execute("CREATE TABLE public.items (id int PRIMARY KEY); GRANT SELECT ON public.items TO PUBLIC")
    bad_then_fixed(roles, "rls_disabled_in_public", "public.items", "REVOKE SELECT ON public.items FROM PUBLIC")


def test_policy_exists_rls_disabled(pg_db):
    pg_db.execute("""
        CREATE TABLE public.docs (id int PRIMARY KEY, owner text);
        CREATE POLICY own_docs ON public.docs FOR SELECT USING (owner = current_user);
    """)
    bad_then_fixed(pg_db, "policy_exists_rls_disabled", "public.docs", "ALTER TABLE public.docs ENABLE ROW LEVEL SECURITY")


def test_rls_enabled_no_policy(pg_db):
    pg_db.execute("CREATE TABLE public.docs (id int PRIMARY KEY, owner text); ALTER TABLE public.docs ENABLE ROW LEVEL SECURITY")
    bad_then_fixed(pg_db, "rls_enabled_no_policy", "public.docs",
                   "CREATE POLICY own_docs ON public.docs FOR SELECT USING (owner = current_user)")


INITPLAN_CASES = [
    ("owner = auth.uid()", "owner = (select auth.uid())"),
    ("(auth.jwt() ->> 'role') = 'admin'", "((select auth.jwt()) ->> 'role') = 'admin'"),
    # The whole expression in the sub-select still calls auth.jwt() in a per-row position for splinter.
    ("(select auth.jwt() ->> 'role') = 'admin'", "((select auth.jwt()) ->> 'role') = 'admin'"),
    ("auth.role() = 'authenticated'", "(select auth.role()) = 'authenticated'"),
    ("auth.email() = 'a@example.com'", "(select auth.email()) = 'a@example.com'"),
    ("owner::text = current_setting('request.jwt.claim.sub', true)", "owner::text = (select current_setting('request.jwt.claim.sub', true))"),
    # One wrapped call does not excuse another unwrapped one.
    ("owner = (select auth.uid()) or auth.role() = 'service_role'", "owner = (select auth.uid()) or (select auth.role()) = 'service_role'"),
]


@pytest.mark.parametrize("bad, good", INITPLAN_CASES)
def test_auth_rls_initplan(auth, bad, good):
    auth.execute("""
        CREATE TABLE public.docs (id int PRIMARY KEY, owner uuid);
        ALTER TABLE public.docs ENABLE ROW LEVEL SECURITY;
        CREATE POLICY read_docs ON public.docs FOR SELECT TO authenticated USING (%s);
    """ % bad)
    bad_then_fixed(auth, "auth_rls_initplan", "public.docs.read_docs", """
        DROP POLICY read_docs ON public.docs;
        CREATE POLICY read_docs ON public.docs FOR SELECT TO authenticated USING (%s);
    """ % good)


def test_auth_rls_initplan_in_with_check(auth):
    auth.execute("""
        CREATE TABLE public.docs (id int PRIMARY KEY, owner uuid);
        ALTER TABLE public.docs ENABLE ROW LEVEL SECURITY;
        CREATE POLICY write_docs ON public.docs FOR INSERT TO authenticated WITH CHECK (owner = auth.uid());
    """)
    bad_then_fixed(auth, "auth_rls_initplan", "public.docs.write_docs",
                   "ALTER POLICY write_docs ON public.docs WITH CHECK (owner = (select auth.uid()))")


def test_multiple_permissive_policies(auth):
    auth.execute("""
        CREATE TABLE public.docs (id int PRIMARY KEY, owner uuid, published boolean);
        ALTER TABLE public.docs ENABLE ROW LEVEL SECURITY;
        CREATE POLICY own_docs ON public.docs FOR SELECT TO authenticated USING (owner = (select auth.uid()));
        CREATE POLICY published_docs ON public.docs FOR SELECT TO authenticated USING (published);
    """)
    hits = [f for f in lint(auth.url) if f.name == "multiple_permissive_policies"]
    assert [f.object for f in hits] == ["public.docs"]
    assert "authenticated" in hits[0].detail and "SELECT" in hits[0].detail
    assert "own_docs" in hits[0].detail and "published_docs" in hits[0].detail
    bad_then_fixed(auth, "multiple_permissive_policies", "public.docs", """
        DROP POLICY own_docs ON public.docs;
        DROP POLICY published_docs ON public.docs;
        CREATE POLICY read_docs ON public.docs FOR SELECT TO authenticated USING (published OR owner = (select auth.uid()));
    """)


def test_multiple_permissive_policies_counts_for_all_and_public(auth):
    auth.execute("""
        CREATE TABLE public.docs (id int PRIMARY KEY, owner uuid, published boolean);
        ALTER TABLE public.docs ENABLE ROW LEVEL SECURITY;
        CREATE POLICY everyone_reads ON public.docs FOR SELECT USING (published);
        CREATE POLICY owner_writes ON public.docs FOR ALL TO anon USING (owner = (select auth.uid()));
    """)
    hits = [f for f in lint(auth.url) if f.name == "multiple_permissive_policies"]
    assert any("role anon and SELECT" in f.detail for f in hits)
    assert not any("UPDATE" in f.detail for f in hits)  # only one policy per write action
    bad_then_fixed(auth, "multiple_permissive_policies", "public.docs", """
        DROP POLICY owner_writes ON public.docs;
        CREATE POLICY owner_inserts ON public.docs FOR INSERT TO anon WITH CHECK (owner = (select auth.uid()));
    """)


def test_restrictive_policies_do_not_count_as_permissive(auth):
    auth.execute("""
        CREATE TABLE public.docs (id int PRIMARY KEY, owner uuid, published boolean);
        ALTER TABLE public.docs ENABLE ROW LEVEL SECURITY;
        CREATE POLICY read_docs ON public.docs FOR SELECT TO authenticated USING (published);
        CREATE POLICY only_own ON public.docs AS RESTRICTIVE FOR SELECT TO authenticated USING (owner = (select auth.uid()));
    """)
    assert "public.docs" not in found(auth, "multiple_permissive_policies")


def test_rls_references_user_metadata(auth):
    auth.execute("""
        CREATE TABLE public.reports (id int PRIMARY KEY);
        ALTER TABLE public.reports ENABLE ROW LEVEL SECURITY;
        CREATE POLICY admins_read ON public.reports FOR SELECT TO authenticated
          USING (((select auth.jwt()) -> 'user_metadata' ->> 'role') = 'admin');
    """)
    bad_then_fixed(auth, "rls_references_user_metadata", "public.reports.admins_read",
                   "ALTER POLICY admins_read ON public.reports USING (((select auth.jwt()) -> 'app_metadata' ->> 'role') = 'admin')")


def test_rls_policy_always_true(auth):
    auth.execute("""
        CREATE TABLE public.docs (id int PRIMARY KEY, owner uuid);
        ALTER TABLE public.docs ENABLE ROW LEVEL SECURITY;
        CREATE POLICY anyone_reads ON public.docs FOR SELECT TO anon USING (true);
        CREATE POLICY anyone_edits ON public.docs FOR UPDATE TO authenticated USING (true);
        CREATE POLICY anyone_adds ON public.docs FOR INSERT TO authenticated WITH CHECK (1 = 1);
        CREATE POLICY service_deletes ON public.docs FOR DELETE TO service_role USING (true);
    """)
    hits = found(auth, "rls_policy_always_true")
    assert "public.docs.anyone_reads" not in hits  # public read access is a documented pattern
    assert "public.docs.service_deletes" not in hits  # not an API role
    assert "public.docs.anyone_adds" in hits
    bad_then_fixed(auth, "rls_policy_always_true", "public.docs.anyone_edits",
                   "ALTER POLICY anyone_edits ON public.docs USING (owner = (select auth.uid()))")


# --------------------------------------------------------------------------- exposure

def test_security_definer_view(roles):
    roles.execute("""
        CREATE TABLE public.items (id int PRIMARY KEY);
        ALTER TABLE public.items ENABLE ROW LEVEL SECURITY;
        CREATE VIEW public.item_ids AS SELECT id FROM public.items;
        GRANT SELECT ON public.item_ids TO authenticated;
        CREATE VIEW public.internal_ids AS SELECT id FROM public.items;
    """)
    assert "public.internal_ids" not in found(roles, "security_definer_view")  # not readable through the API
    bad_then_fixed(roles, "security_definer_view", "public.item_ids", "ALTER VIEW public.item_ids SET (security_invoker = true)")


def test_materialized_view_in_api(roles):
    roles.execute("""
        CREATE MATERIALIZED VIEW public.daily AS SELECT 1 AS n;
        GRANT SELECT ON public.daily TO anon;
        CREATE SCHEMA analytics;
        CREATE MATERIALIZED VIEW analytics.daily AS SELECT 1 AS n;
        GRANT SELECT ON analytics.daily TO anon;
    """)
    assert "analytics.daily" not in found(roles, "materialized_view_in_api")
    bad_then_fixed(roles, "materialized_view_in_api", "public.daily", "REVOKE SELECT ON public.daily FROM anon")


def test_foreign_table_in_api(roles):
    roles.execute("""
        CREATE FOREIGN DATA WRAPPER lint_fdw;
        CREATE SERVER lint_server FOREIGN DATA WRAPPER lint_fdw;
        CREATE FOREIGN TABLE public.remote_items (id int) SERVER lint_server;
        GRANT SELECT ON public.remote_items TO authenticated;
    """)
    bad_then_fixed(roles, "foreign_table_in_api", "public.remote_items", "REVOKE SELECT ON public.remote_items FROM authenticated")


def test_sensitive_columns_exposed(roles):
    roles.execute("""
        CREATE TABLE public.accounts (id int PRIMARY KEY, email text, "Password" text, api_key text);
        GRANT SELECT ON public.accounts TO anon;
        CREATE TABLE public.colors (id int PRIMARY KEY, name text);
        GRANT SELECT ON public.colors TO anon;
    """)
    hits = [f for f in lint(roles.url) if f.name == "sensitive_columns_exposed"]
    assert [f.object for f in hits] == ["public.accounts"]
    assert "Password" in hits[0].detail and "api_key" in hits[0].detail and "email" not in hits[0].detail
    bad_then_fixed(roles, "sensitive_columns_exposed", "public.accounts", "ALTER TABLE public.accounts ENABLE ROW LEVEL SECURITY")


def test_pg_graphql_rules_assume_the_extension_when_asked(roles):
    roles.execute("""
        CREATE TABLE public.items (id int PRIMARY KEY, secret text);
        ALTER TABLE public.items ENABLE ROW LEVEL SECURITY;
        GRANT SELECT (id) ON public.items TO anon;
        GRANT SELECT ON public.items TO authenticated;
    """)
    # Plain PostgreSQL has no pg_graphql: the rules stay quiet unless told to assume it.
    assert "public.items" not in found(roles, "pg_graphql_anon_table_exposed")
    assert "public.items" not in found(roles, "pg_graphql_anon_table_exposed", graphql=False)
    assert "public.items" in found(roles, "pg_graphql_authenticated_table_exposed", graphql=True)
    # A column grant is enough to appear in the GraphQL schema.
    bad_then_fixed(roles, "pg_graphql_anon_table_exposed", "public.items", "REVOKE SELECT (id) ON public.items FROM anon", graphql=True)
    bad_then_fixed(roles, "pg_graphql_authenticated_table_exposed", "public.items",
                   "REVOKE SELECT ON public.items FROM authenticated", graphql=True)


AUTH_USERS = """
CREATE TABLE auth.users (id uuid PRIMARY KEY, email text UNIQUE, raw_user_meta_data jsonb);
"""


def test_auth_users_exposed(auth):
    auth.execute(AUTH_USERS + """
        CREATE VIEW public.user_emails AS SELECT id, email FROM auth.users;
        GRANT SELECT ON public.user_emails TO anon;
        CREATE MATERIALIZED VIEW public.user_count AS SELECT count(*) AS n FROM auth.users;
        GRANT SELECT ON public.user_count TO authenticated;
    """)
    assert "public.user_count" in found(auth, "auth_users_exposed")
    # security_invoker alone is not enough while auth.users itself has no RLS.
    auth.execute("ALTER VIEW public.user_emails SET (security_invoker = true)")
    assert "public.user_emails" in found(auth, "auth_users_exposed")
    bad_then_fixed(auth, "auth_users_exposed", "public.user_emails", "ALTER TABLE auth.users ENABLE ROW LEVEL SECURITY")
    bad_then_fixed(auth, "auth_users_exposed", "public.user_count", "REVOKE SELECT ON public.user_count FROM authenticated")


def test_insecure_queue_exposed_in_api(roles):
    roles.execute("""
        CREATE SCHEMA pgmq;
        CREATE TABLE pgmq.q_jobs (msg_id bigint PRIMARY KEY, message jsonb);
        GRANT SELECT ON pgmq.q_jobs TO anon;
    """)
    assert "pgmq.q_jobs" not in found(roles, "insecure_queue_exposed_in_api")  # pgmq_public not exposed
    bad_then_fixed(roles, "insecure_queue_exposed_in_api", "pgmq.q_jobs", "ALTER TABLE pgmq.q_jobs ENABLE ROW LEVEL SECURITY",
                   schemas=("public", "pgmq_public"))


# --------------------------------------------------------------------------- functions

def test_function_search_path_mutable(pg_db):
    pg_db.execute("""
        CREATE FUNCTION public.add_tax(amount numeric, rate numeric) RETURNS numeric LANGUAGE sql AS $$ SELECT amount * (1 + rate) $$;
        CREATE PROCEDURE public.tidy() LANGUAGE sql AS $$ SELECT 1 $$;
        CREATE FUNCTION public.fixed() RETURNS int LANGUAGE sql SET search_path = '' AS $$ SELECT 1 $$;
    """)
    hits = found(pg_db, "function_search_path_mutable")
    assert "public.tidy()" in hits
    assert "public.fixed()" not in hits
    bad_then_fixed(pg_db, "function_search_path_mutable", "public.add_tax(numeric, numeric)",
                   "ALTER FUNCTION public.add_tax(numeric, numeric) SET search_path = pg_catalog, public")


def test_function_search_path_mutable_skips_extension_functions(pg_db):
    pg_db.execute("CREATE SCHEMA extensions; CREATE EXTENSION citext SCHEMA extensions")
    assert not [o for o in found(pg_db, "function_search_path_mutable") if o.startswith("extensions.")]


SECDEF = """
CREATE FUNCTION public.purge_cache() RETURNS void LANGUAGE sql SECURITY DEFINER SET search_path = '' AS $$ SELECT $$;
"""


def test_security_definer_function_executable(roles):
    roles.execute(SECDEF)  # EXECUTE is granted to PUBLIC by default
    assert "public.purge_cache()" in found(roles, "anon_security_definer_function_executable")
    assert "public.purge_cache()" in found(roles, "authenticated_security_definer_function_executable")
    roles.execute("REVOKE EXECUTE ON FUNCTION public.purge_cache() FROM PUBLIC; GRANT EXECUTE ON FUNCTION public.purge_cache() TO authenticated")
    assert "public.purge_cache()" not in found(roles, "anon_security_definer_function_executable")
    bad_then_fixed(roles, "authenticated_security_definer_function_executable", "public.purge_cache()",
                   "REVOKE EXECUTE ON FUNCTION public.purge_cache() FROM authenticated")


def test_security_definer_function_outside_the_api_is_fine(roles):
    roles.execute("CREATE SCHEMA kit;" + SECDEF.replace("public.", "kit."))
    assert "kit.purge_cache()" not in found(roles, "anon_security_definer_function_executable")
    assert "kit.purge_cache()" in found(roles, "anon_security_definer_function_executable", schemas=("public", "kit"))


# --------------------------------------------------------------------------- schema design

def test_unindexed_foreign_keys(pg_db):
    pg_db.execute("""
        CREATE TABLE public.parent (id int PRIMARY KEY, code int, UNIQUE (id, code));
        CREATE TABLE public.child (id int PRIMARY KEY, parent_id int REFERENCES public.parent);
        CREATE TABLE public.pair (id int PRIMARY KEY, a int, b int,
                                  CONSTRAINT pair_parent_fkey FOREIGN KEY (a, b) REFERENCES public.parent (id, code));
        CREATE INDEX pair_b_a_idx ON public.pair (b, a);
    """)
    assert "public.pair.pair_parent_fkey" in found(pg_db, "unindexed_foreign_keys")  # wrong column order
    bad_then_fixed(pg_db, "unindexed_foreign_keys", "public.child.child_parent_id_fkey",
                   "CREATE INDEX child_parent_id_idx ON public.child (parent_id)")
    bad_then_fixed(pg_db, "unindexed_foreign_keys", "public.pair.pair_parent_fkey", "CREATE INDEX pair_a_b_idx ON public.pair (a, b, id)")


def test_no_primary_key(pg_db):
    pg_db.execute("CREATE TABLE public.events (id bigint NOT NULL, at timestamptz)")
    bad_then_fixed(pg_db, "no_primary_key", "public.events", "ALTER TABLE public.events ADD PRIMARY KEY (id)")


def test_duplicate_index(pg_db):
    pg_db.execute("""
        CREATE TABLE public.events (id bigint PRIMARY KEY, at timestamptz);
        CREATE INDEX events_at_idx ON public.events (at);
        CREATE INDEX events_at_desc_idx ON public.events (at DESC);
        CREATE MATERIALIZED VIEW public.daily AS SELECT 1 AS n;
        CREATE UNIQUE INDEX daily_n_key ON public.daily (n);
        CREATE UNIQUE INDEX daily_n_key2 ON public.daily (n);
    """)
    assert "public.events" not in found(pg_db, "duplicate_index")
    pg_db.execute("CREATE INDEX events_at_idx2 ON public.events (at)")
    bad_then_fixed(pg_db, "duplicate_index", "public.events", "DROP INDEX public.events_at_idx2")
    bad_then_fixed(pg_db, "duplicate_index", "public.daily", "DROP INDEX public.daily_n_key2")


def test_unsupported_reg_types(pg_db):
    pg_db.execute("CREATE TABLE public.hooks (id int PRIMARY KEY, handler regproc, target regclass)")
    hits = found(pg_db, "unsupported_reg_types")
    assert "public.hooks.target" not in hits  # regclass survives pg_upgrade
    bad_then_fixed(pg_db, "unsupported_reg_types", "public.hooks.handler", "ALTER TABLE public.hooks ALTER COLUMN handler TYPE text")


def test_fkey_to_auth_unique(auth):
    auth.execute(AUTH_USERS + """
        CREATE TABLE public.profiles (id uuid PRIMARY KEY, email text REFERENCES auth.users (email));
        CREATE INDEX ON public.profiles (email);
    """)
    bad_then_fixed(auth, "fkey_to_auth_unique", "public.profiles.profiles_email_fkey", """
        ALTER TABLE public.profiles DROP CONSTRAINT profiles_email_fkey;
        ALTER TABLE public.profiles ADD CONSTRAINT profiles_id_fkey FOREIGN KEY (id) REFERENCES auth.users (id);
    """)


# --------------------------------------------------------------------------- extensions, storage

def test_extension_in_public(pg_db):
    pg_db.execute("CREATE EXTENSION citext SCHEMA public")
    assert "plpgsql" not in found(pg_db, "extension_in_public")
    bad_then_fixed(pg_db, "extension_in_public", "citext", "CREATE SCHEMA extensions; ALTER EXTENSION citext SET SCHEMA extensions")


def test_extension_versions_outdated(pg_db):
    pg_db.execute("CREATE SCHEMA extensions; CREATE EXTENSION hstore VERSION '1.4' SCHEMA extensions")
    bad_then_fixed(pg_db, "extension_versions_outdated", "hstore", "ALTER EXTENSION hstore UPDATE")


STORAGE = """
CREATE SCHEMA storage;
CREATE TABLE storage.buckets (id text PRIMARY KEY, name text NOT NULL, public boolean DEFAULT false);
CREATE TABLE storage.objects (id uuid PRIMARY KEY, bucket_id text REFERENCES storage.buckets, name text, owner uuid);
ALTER TABLE storage.objects ENABLE ROW LEVEL SECURITY;
INSERT INTO storage.buckets VALUES ('avatars', 'avatars', true), ('private', 'private', false);
"""


def test_public_bucket_allows_listing(auth):
    auth.execute(STORAGE + """
        CREATE POLICY "read avatars" ON storage.objects FOR SELECT TO public USING (bucket_id = 'avatars');
        CREATE POLICY "read private" ON storage.objects FOR SELECT TO authenticated USING (bucket_id = 'private');
    """)
    assert found(auth, "public_bucket_allows_listing") == {"avatars"}
    bad_then_fixed(auth, "public_bucket_allows_listing", "avatars", """
        ALTER POLICY "read avatars" ON storage.objects USING (bucket_id = 'avatars' AND owner = (select auth.uid()));
    """)


def test_no_storage_schema_is_fine(pg_db):
    assert not found(pg_db, "public_bucket_allows_listing")


# --------------------------------------------------------------------------- the linter itself

CLEAN_KIT = """
CREATE SCHEMA extensions;
CREATE EXTENSION citext SCHEMA extensions;
CREATE TABLE public.docs (id bigint PRIMARY KEY, owner uuid NOT NULL, title text, published boolean NOT NULL DEFAULT false);
ALTER TABLE public.docs ENABLE ROW LEVEL SECURITY;
CREATE INDEX docs_owner_idx ON public.docs (owner);
CREATE TABLE public.comments (id bigint PRIMARY KEY, doc_id bigint NOT NULL REFERENCES public.docs, body text);
ALTER TABLE public.comments ENABLE ROW LEVEL SECURITY;
CREATE INDEX comments_doc_id_idx ON public.comments (doc_id);
GRANT SELECT, INSERT, UPDATE, DELETE ON public.docs, public.comments TO authenticated;
GRANT SELECT ON public.docs TO anon;
CREATE POLICY docs_read ON public.docs FOR SELECT TO anon, authenticated
  USING (published OR owner = (select auth.uid()) OR ((select auth.jwt()) -> 'app_metadata' ->> 'role') = 'admin');
CREATE POLICY docs_insert ON public.docs FOR INSERT TO authenticated WITH CHECK (owner = (select auth.uid()));
CREATE POLICY docs_update ON public.docs FOR UPDATE TO authenticated
  USING (owner = (select auth.uid())) WITH CHECK (owner = (select auth.uid()));
CREATE POLICY comments_read ON public.comments FOR SELECT TO authenticated
  USING (EXISTS (SELECT 1 FROM public.docs d WHERE d.id = doc_id));
CREATE VIEW public.doc_titles WITH (security_invoker = true) AS SELECT id, title FROM public.docs;
GRANT SELECT ON public.doc_titles TO authenticated;
CREATE MATERIALIZED VIEW public.doc_stats AS SELECT owner, count(*) AS n FROM public.docs GROUP BY owner;
CREATE UNIQUE INDEX doc_stats_owner_key ON public.doc_stats (owner);
REVOKE ALL ON public.doc_stats FROM anon, authenticated;
CREATE FUNCTION public.doc_count() RETURNS bigint LANGUAGE sql STABLE SET search_path = ''
  AS $$ SELECT count(*) FROM public.docs $$;
CREATE FUNCTION public.refresh_doc_stats() RETURNS void LANGUAGE sql SECURITY DEFINER SET search_path = ''
  AS $$ REFRESH MATERIALIZED VIEW CONCURRENTLY public.doc_stats $$;
REVOKE EXECUTE ON FUNCTION public.refresh_doc_stats() FROM PUBLIC, anon, authenticated;
GRANT EXECUTE ON FUNCTION public.refresh_doc_stats() TO service_role;
"""


def test_a_clean_schema_passes_the_bar(auth):
    auth.execute(CLEAN_KIT)
    assert db_lint.blocking(lint(auth.url, graphql=False)) == []
    # On Supabase with pg_graphql installed, every API-readable relation is a WARN as well.
    exposed = found(auth, "pg_graphql_authenticated_table_exposed", graphql=True)
    assert exposed == {"public.docs", "public.comments", "public.doc_titles"}


def test_plain_postgres_without_api_roles_or_auth(pg_db, monkeypatch):
    monkeypatch.setattr(db_lint, "ANON_ROLE", "slogate_no_such_anon")
    monkeypatch.setattr(db_lint, "AUTHENTICATED_ROLE", "slogate_no_such_authenticated")
    pg_db.execute("""
        CREATE TABLE public.items (id int PRIMARY KEY, password text);
        GRANT SELECT ON public.items TO PUBLIC;
        CREATE VIEW public.item_ids AS SELECT id FROM public.items;
        CREATE FUNCTION public.purge() RETURNS void LANGUAGE sql SECURITY DEFINER AS $$ SELECT $$;
        CREATE TABLE public.docs (id int PRIMARY KEY, owner text);
        ALTER TABLE public.docs ENABLE ROW LEVEL SECURITY;
        CREATE POLICY own ON public.docs USING (owner = current_setting('request.jwt.claim.sub', true));
    """)
    findings = lint(pg_db.url, graphql=True)
    names = {f.name for f in findings}
    assert names == {"auth_rls_initplan", "function_search_path_mutable"}


def test_schemas_default_to_the_postgrest_setting(roles):
    roles.execute("""
        CREATE SCHEMA api;
        CREATE TABLE api.items (id int PRIMARY KEY);
        GRANT SELECT ON api.items TO anon;
        ALTER DATABASE "%s" SET pgrst.db_schemas = 'api, graphql_public';
    """ % roles.name)
    assert "api.items" not in found(roles, "rls_disabled_in_public")
    assert "api.items" in found(roles, "rls_disabled_in_public", schemas=None)


@pytest.mark.parametrize("autocommit", [True, False])
def test_a_connection_passed_in_is_left_as_found(pg_db, autocommit):
    pg_db.execute("CREATE TABLE public.events (id bigint)")
    conn = psycopg2.connect(pg_db.url)
    try:
        conn.autocommit = autocommit
        assert [f.object for f in lint(conn) if f.name == "no_primary_key"] == ["public.events"]
        assert conn.get_transaction_status() == psycopg2.extensions.TRANSACTION_STATUS_IDLE
        if not autocommit:  # inside a transaction: the lint uses a savepoint and keeps the caller's work
            with conn.cursor() as cur:
                cur.execute("CREATE TABLE public.more_events (id bigint)")
            assert "public.more_events" in {f.object for f in lint(conn) if f.name == "no_primary_key"}
            assert conn.get_transaction_status() == psycopg2.extensions.TRANSACTION_STATUS_INTRANS
            conn.commit()
        with conn.cursor() as cur:
            cur.execute("SHOW search_path")
            assert cur.fetchone()[0] == '"$user", public'
    finally:
        conn.close()


def run_cli(*args):
    return subprocess.run([sys.executable, LINT_SCRIPT] + list(args), capture_output=True, text=True, check=False, timeout=120)


def test_cli_exit_codes_and_no_password(roles):
    password = roles.server.password
    clean = run_cli(roles.url)
    assert clean.returncode == 0, clean.stdout + clean.stderr
    roles.execute("CREATE TABLE public.items (id int PRIMARY KEY); GRANT SELECT ON public.items TO anon")
    bad = run_cli(roles.url)
    assert bad.returncode == 1
    assert "ERROR rls_disabled_in_public public.items: " in bad.stdout.splitlines()[0]
    assert run_cli(roles.url, "--schemas", "api").returncode == 0  # public is not exposed then
    roles.execute("ALTER TABLE public.items ENABLE ROW LEVEL SECURITY")
    info_only = run_cli(roles.url)
    assert info_only.returncode == 0 and "INFO rls_enabled_no_policy public.items" in info_only.stdout
    for run in (clean, bad, info_only):
        assert password not in run.stdout + run.stderr


def test_cli_connection_failure_masks_the_password(pg_db):
    wrong = "not-the-password-%s" % pg_db.name
    run = run_cli(pg_db.server.url_for(pg_db.name, password=wrong))
    assert run.returncode == 2
    assert "password authentication failed" in run.stderr
    assert wrong not in run.stdout + run.stderr
