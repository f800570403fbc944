"""Our own implementation of the rules of Supabase's database linter.

Supabase's linter (the public repository supabase/splinter) holds each lint
as a SQL view. The tests cannot download it, so this module re-implements
the same rules, under the same names and levels, from their documented
meaning. The kit and the demo must raise no ERROR and no WARN here.

    from db_lint import lint
    findings = lint("postgresql://...", schemas=("public",))

    python tests/support/db_lint.py DB_URL [--schemas public,api] [--graphql auto|on|off]
        prints one finding a line; exit 1 when any ERROR or WARN is found,
        2 when the database cannot be reached (the password is never printed)

`schemas` are the schemas PostgREST exposes (splinter reads them from the
`pgrst.db_schemas` setting; `schemas=None` does the same here and falls
back to `public`). The rules about the API roles need `anon` and
`authenticated`, the auth rules look for the `auth` schema: on a plain
PostgreSQL without them those rules find nothing, they never fail.

`Finding.object` names what to fix:
    schema.relation              tables, views, materialized views, foreign tables
    schema.table.policy          rules about one policy
    schema.table.constraint      rules about one foreign key
    schema.table.column          unsupported_reg_types
    schema.function(arg types)   rules about functions
    extension name               extension rules
    bucket id                    public_bucket_allows_listing

The pg_graphql rules fire only when the pg_graphql extension is installed,
as in splinter (`graphql=None`); `graphql=True` assumes it is (a Supabase
project has it unless it was dropped), `graphql=False` skips them.
"""

import argparse
import re
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from urllib.parse import unquote, urlsplit

import psycopg2

ERROR, WARN, INFO = "ERROR", "WARN", "INFO"
LEVEL_ORDER = {ERROR: 0, WARN: 1, INFO: 2}

ANON_ROLE = "anon"
AUTHENTICATED_ROLE = "authenticated"

# Schemas that Supabase, its extensions and PostgreSQL own: the user's rules skip them.
INTERNAL_SCHEMAS = (
    "_timescaledb_cache", "_timescaledb_catalog", "_timescaledb_config", "_timescaledb_internal",
    "auth", "cron", "extensions", "graphql", "graphql_public", "information_schema", "net",
    "pg_catalog", "pgbouncer", "pgmq", "pgroonga", "pgsodium", "pgsodium_masks", "pgtle",
    "realtime", "repack", "storage", "supabase_functions", "supabase_migrations", "tiger",
    "topology", "vault",
)
# auth_rls_initplan also looks at realtime (policies on realtime.messages).
INITPLAN_SKIPPED_SCHEMAS = tuple(s for s in INTERNAL_SCHEMAS if s != "realtime")

INVOKER_OPTIONS = ("security_invoker=1", "security_invoker=true", "security_invoker=yes", "security_invoker=on")

# Calls that must be wrapped in a scalar sub-select inside a policy so that
# PostgreSQL evaluates them once per statement (an init plan), not per row.
PER_ROW_CALLS = ("auth.uid()", "auth.jwt()", "auth.role()", "auth.email()", "current_setting(")

# Types pg_upgrade cannot carry over in user columns (their oids are not stable).
UNSUPPORTED_REG_TYPES = (
    "regcollation", "regconfig", "regdictionary", "regnamespace", "regoper", "regoperator", "regproc", "regprocedure",
)

# Column names treated as sensitive by sensitive_columns_exposed (compared lower-cased, '-' read as '_').
SENSITIVE_COLUMN_NAMES = frozenset("""
    password passwd pwd passphrase secret secret_key private_key api_key apikey auth_key token jwt
    access_token refresh_token oauth_token session_token bearer_token auth_code session_id session_key
    session_secret recovery_code backup_code verification_code otp two_factor 2fa_secret 2fa_code
    ssn social_security social_security_number driver_license drivers_license license_number
    passport_number passport_id national_id tax_id
    credit_card card_number cvv cvc cvn bank_account account_number routing_number iban swift_code bic
    health_record medical_record patient_id insurance_number health_insurance medical_insurance treatment
    mac_address macaddr imei device_uuid
    pgp_key gpg_key ssh_key certificate license_key activation_key facial_recognition
""".split())

ALWAYS_TRUE = frozenset(("true", "(true)", "1=1", "(1=1)"))
COMMANDS = {"r": "SELECT", "a": "INSERT", "w": "UPDATE", "d": "DELETE", "*": "ALL"}


@dataclass(frozen=True)
class Finding:
    name: str
    level: str
    title: str
    object: str
    detail: str

    def __str__(self):
        return "%s %s %s: %s" % (self.level, self.name, self.object, self.detail)


@dataclass(frozen=True)
class Rule:
    name: str
    level: str
    title: str
    check: object  # check(ctx) yields (object, detail)


RULES = []


def rule(name, level, title):
    def register(check):
        RULES.append(Rule(name, level, title, check))
        return check
    return register


def like(text, pattern):
    """SQL `text LIKE pattern` (case-sensitive, backslash escapes) on Python strings."""
    parts, i = [], 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern):
            parts.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        parts.append(".*" if char == "%" else "." if char == "_" else re.escape(char))
        i += 1
    return text is not None and re.fullmatch("".join(parts), text, re.S) is not None


def qualified(*names):
    return ".".join(names)


# --------------------------------------------------------------------------- catalog reads

EXT_OWNED = """exists (select 1 from pg_catalog.pg_depend d
                 where d.classid = '%s'::regclass and d.objid = %s and d.deptype = 'e')"""

RELATIONS_SQL = """
select n.nspname, c.relname, c.relkind::text, c.relrowsecurity,
       n.nspname = any(%(exposed)s) as exposed,
       """ + EXT_OWNED % ("pg_catalog.pg_class", "c.oid") + """ as ext_owned,
       exists (select 1 from unnest(coalesce(c.reloptions, '{}'::text[])) o
               where lower(o) = any(%(invoker_options)s)) as invoker,
       exists (select 1 from pg_catalog.pg_index x where x.indrelid = c.oid and x.indisprimary) as has_pk,
       exists (select 1 from pg_catalog.pg_policy p where p.polrelid = c.oid) as has_policy,
       coalesce(pg_catalog.has_table_privilege(%(anon)s::oid, c.oid, 'SELECT'), false),
       coalesce(pg_catalog.has_table_privilege(%(authenticated)s::oid, c.oid, 'SELECT'), false),
       coalesce((select bool_or(pg_catalog.has_column_privilege(%(anon)s::oid, c.oid, a.attnum, 'SELECT'))
                 from pg_catalog.pg_attribute a where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped), false),
       coalesce((select bool_or(pg_catalog.has_column_privilege(%(authenticated)s::oid, c.oid, a.attnum, 'SELECT'))
                 from pg_catalog.pg_attribute a where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped), false),
       array(select a.attname::text from pg_catalog.pg_attribute a
             where a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped order by a.attnum)
from pg_catalog.pg_class c
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
where c.relkind in ('r', 'p', 'v', 'm', 'f') and n.nspname <> all(%(internal)s)
order by 1, 2
"""


@dataclass(frozen=True)
class Relation:
    schema: str
    name: str
    kind: str
    rls: bool
    exposed: bool
    ext_owned: bool
    invoker: bool
    has_pk: bool
    has_policy: bool
    anon_select: bool
    authenticated_select: bool
    anon_any_column: bool
    authenticated_any_column: bool
    columns: tuple

    @property
    def ident(self):
        return qualified(self.schema, self.name)

    @property
    def api_selectable(self):
        return self.anon_select or self.authenticated_select


FUNCTIONS_SQL = """
select n.nspname, p.proname, pg_catalog.oidvectortypes(p.proargtypes), p.prosecdef,
       n.nspname = any(%(exposed)s) as exposed,
       """ + EXT_OWNED % ("pg_catalog.pg_proc", "p.oid") + """ as ext_owned,
       exists (select 1 from unnest(coalesce(p.proconfig, '{}'::text[])) s where s like 'search\\_path=%%') as fixed_path,
       coalesce(pg_catalog.has_function_privilege(%(anon)s::oid, p.oid, 'EXECUTE'), false),
       coalesce(pg_catalog.has_function_privilege(%(authenticated)s::oid, p.oid, 'EXECUTE'), false)
from pg_catalog.pg_proc p
join pg_catalog.pg_namespace n on n.oid = p.pronamespace
where n.nspname <> all(%(internal)s)
order by 1, 2, 3
"""


@dataclass(frozen=True)
class Function:
    schema: str
    name: str
    arg_types: str
    security_definer: bool
    exposed: bool
    ext_owned: bool
    fixed_path: bool
    anon_execute: bool
    authenticated_execute: bool

    @property
    def ident(self):
        return "%s.%s(%s)" % (self.schema, self.name, self.arg_types)


POLICIES_SQL = """
select n.nspname, c.relname, c.relkind::text, c.relrowsecurity,
       """ + EXT_OWNED % ("pg_catalog.pg_class", "c.oid") + """ as ext_owned,
       p.polname, p.polpermissive, p.polcmd::text,
       0::oid = any(p.polroles) as to_public,
       array(select r.rolname::text from pg_catalog.pg_roles r where r.oid = any(p.polroles) order by 1),
       pg_catalog.pg_get_expr(p.polqual, p.polrelid),
       pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid)
from pg_catalog.pg_policy p
join pg_catalog.pg_class c on c.oid = p.polrelid
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
where n.nspname <> all(%(policy_schemas_skipped)s)
order by 1, 2, 6
"""


@dataclass(frozen=True)
class Policy:
    schema: str
    table: str
    table_kind: str
    rls: bool
    ext_owned: bool
    name: str
    permissive: bool
    cmd: str
    to_public: bool
    roles: tuple
    qual: str
    with_check: str

    @property
    def ident(self):
        return qualified(self.schema, self.table, self.name)

    @property
    def table_ident(self):
        return qualified(self.schema, self.table)

    @property
    def command(self):
        return COMMANDS.get(self.cmd, self.cmd)

    @property
    def expressions(self):
        return [e for e in (self.qual, self.with_check) if e is not None]


class Context:
    """What every rule needs: the cursor, the parameters, and the catalog read once."""

    def __init__(self, cur, schemas, graphql):
        self.cur = cur
        cur.execute("select rolname, oid from pg_catalog.pg_roles where rolname in (%s, %s)", (ANON_ROLE, AUTHENTICATED_ROLE))
        roles = dict(cur.fetchall())
        self.anon = roles.get(ANON_ROLE)
        self.authenticated = roles.get(AUTHENTICATED_ROLE)
        if schemas is None:
            cur.execute("select current_setting('pgrst.db_schemas', true)")
            setting = cur.fetchone()[0]
            schemas = [s.strip() for s in setting.split(",") if s.strip()] if setting else ["public"]
        self.exposed = list(schemas)
        cur.execute("select current_setting('server_version_num')::int")
        self.server_version_num = cur.fetchone()[0]
        if graphql is None:
            cur.execute("select exists (select 1 from pg_catalog.pg_extension where extname = 'pg_graphql')")
            graphql = cur.fetchone()[0]
        self.graphql = bool(graphql)
        self.params = {
            "exposed": self.exposed,
            "internal": list(INTERNAL_SCHEMAS),
            "policy_schemas_skipped": list(INITPLAN_SKIPPED_SCHEMAS),
            "invoker_options": list(INVOKER_OPTIONS),
            "anon": self.anon,
            "authenticated": self.authenticated,
        }

    def query(self, sql, params=None):
        self.cur.execute(sql, self.params if params is None else params)
        return self.cur.fetchall()

    @cached_property
    def relations(self):
        return [Relation(*row[:13], columns=tuple(row[13])) for row in self.query(RELATIONS_SQL)]

    @cached_property
    def functions(self):
        return [Function(*row) for row in self.query(FUNCTIONS_SQL)]

    @cached_property
    def policies(self):
        rows = self.query(POLICIES_SQL)
        return [Policy(*row[:9], roles=tuple(row[9]), qual=row[10], with_check=row[11]) for row in rows]

    def user_relations(self, *kinds):
        """Relations outside the internal schemas and not owned by an extension."""
        return [r for r in self.relations if r.kind in kinds and not r.ext_owned]


# --------------------------------------------------------------------------- the rules: RLS

@rule("rls_disabled_in_public", ERROR, "RLS Disabled in Public")
def rls_disabled_in_public(ctx):
    for rel in ctx.relations:
        if rel.kind == "r" and rel.exposed and not rel.rls and rel.api_selectable:
            yield rel.ident, "Table %s is exposed to the API (anon or authenticated can SELECT it) but RLS is not enabled" % rel.ident


@rule("policy_exists_rls_disabled", ERROR, "Policy Exists RLS Disabled")
def policy_exists_rls_disabled(ctx):
    for rel in ctx.user_relations("r"):
        if rel.has_policy and not rel.rls:
            names = sorted(p.name for p in ctx.policies if p.schema == rel.schema and p.table == rel.name)
            yield rel.ident, "Table %s has RLS policies (%s) but RLS is not enabled on it" % (rel.ident, ", ".join(names))


@rule("rls_enabled_no_policy", INFO, "RLS Enabled No Policy")
def rls_enabled_no_policy(ctx):
    for rel in ctx.user_relations("r"):
        if rel.rls and not rel.has_policy:
            yield rel.ident, "Table %s has RLS enabled but no policy: nobody but its owner and superusers sees a row" % rel.ident


def per_row_calls(expression):
    """The calls in a policy expression that are not the whole of a `(select ...)`."""
    found = []
    lowered = expression.lower()
    for call in PER_ROW_CALLS:
        start = expression.find(call)
        while start >= 0:
            if lowered[max(0, start - 7):start] != "select ":
                found.append(call + (")" if call.endswith("(") else ""))
            start = expression.find(call, start + 1)
    return sorted(set(found))


@rule("auth_rls_initplan", WARN, "Auth RLS Initialization Plan")
def auth_rls_initplan(ctx):
    for pol in ctx.policies:
        if not pol.rls:
            continue
        calls = sorted(set(c for e in pol.expressions for c in per_row_calls(e)))
        if calls:
            yield pol.ident, ("Policy %s on %s calls %s once per row: wrap each call alone in a sub-select, "
                              "(select auth.uid()), ((select auth.jwt()) ->> 'role')" % (pol.name, pol.table_ident, ", ".join(calls)))


def policy_roles(pol, eligible):
    if pol.to_public:
        return eligible
    return [r for r in pol.roles if r in eligible]


@rule("multiple_permissive_policies", WARN, "Multiple Permissive Policies")
def multiple_permissive_policies(ctx):
    rows = ctx.query("select rolname::text from pg_catalog.pg_roles where not rolbypassrls order by 1")
    eligible = [name for (name,) in rows if not like(name, "pg_%") and not like(name, "supabase%admin")]
    groups = {}
    for pol in ctx.policies:
        if pol.table_kind != "r" or not pol.permissive or pol.ext_owned or pol.schema in INTERNAL_SCHEMAS:
            continue
        actions = ("SELECT", "INSERT", "UPDATE", "DELETE") if pol.cmd == "*" else (pol.command,)
        for role in policy_roles(pol, eligible):
            for action in actions:
                groups.setdefault((pol.table_ident, role, action), []).append(pol.name)
    for (table, role, action), names in sorted(groups.items()):
        if len(names) > 1:
            yield table, "Table %s has %d permissive policies for role %s and %s: %s; merge them into one" % (
                table, len(names), role, action, ", ".join(sorted(names)))


@rule("rls_references_user_metadata", ERROR, "RLS references user metadata")
def rls_references_user_metadata(ctx):
    patterns = ("%auth.jwt()%user_metadata%", "%current_setting(%request.jwt.claims%)%user_metadata%")
    for pol in ctx.policies:
        if pol.schema in INTERNAL_SCHEMAS:
            continue
        if any(like(e, p) for e in pol.expressions for p in patterns):
            yield pol.ident, ("Policy %s on %s reads the JWT's user_metadata, which every user can edit: "
                              "use app_metadata or a table" % (pol.name, pol.table_ident))


@rule("rls_policy_always_true", WARN, "RLS Policy Always True")
def rls_policy_always_true(ctx):
    def normal(text):
        return (text or "").lower().replace(" ", "").replace("\n", "").replace("\t", "")

    for pol in ctx.policies:
        if pol.table_kind != "r" or pol.schema in INTERNAL_SCHEMAS or not pol.rls or not pol.permissive:
            continue
        if not (pol.to_public or ANON_ROLE in pol.roles or AUTHENTICATED_ROLE in pol.roles):
            continue
        qual_true = normal(pol.qual) in ALWAYS_TRUE
        using_true = pol.command in ("UPDATE", "DELETE", "ALL") and (qual_true or pol.qual is None)
        check_true = (normal(pol.with_check) in ALWAYS_TRUE
                      or (pol.with_check is None and pol.command == "INSERT")
                      or (pol.with_check is None and pol.command in ("UPDATE", "ALL") and qual_true))
        if using_true or check_true:
            which = " and ".join(w for w, hit in (("USING", using_true), ("WITH CHECK", check_true)) if hit)
            who = "public" if pol.to_public else ", ".join(pol.roles)
            yield pol.ident, "Policy %s on %s for %s lets %s through unconditionally (%s always true)" % (
                pol.name, pol.table_ident, pol.command, who, which)


# --------------------------------------------------------------------------- the rules: exposure

@rule("security_definer_view", ERROR, "Security Definer View")
def security_definer_view(ctx):
    if ctx.server_version_num < 150000:  # security_invoker views came with PostgreSQL 15
        return
    for rel in ctx.user_relations("v"):
        if rel.exposed and rel.api_selectable and not rel.invoker:
            yield rel.ident, "View %s runs with its owner's rights and RLS: create it WITH (security_invoker = true)" % rel.ident


@rule("materialized_view_in_api", WARN, "Materialized View in API")
def materialized_view_in_api(ctx):
    for rel in ctx.user_relations("m"):
        if rel.exposed and rel.api_selectable:
            yield rel.ident, "Materialized view %s (no RLS) is selectable by anon or authenticated: revoke SELECT or move it" % rel.ident


@rule("foreign_table_in_api", WARN, "Foreign Table in API")
def foreign_table_in_api(ctx):
    for rel in ctx.user_relations("f"):
        if rel.exposed and rel.api_selectable:
            yield rel.ident, "Foreign table %s (no RLS) is selectable by anon or authenticated" % rel.ident


@rule("sensitive_columns_exposed", ERROR, "Sensitive Columns Exposed")
def sensitive_columns_exposed(ctx):
    for rel in ctx.relations:
        if rel.kind == "r" and rel.exposed and not rel.rls and rel.api_selectable:
            hits = sorted(c for c in rel.columns if c.lower().replace("-", "_") in SENSITIVE_COLUMN_NAMES)
            if hits:
                yield rel.ident, "Table %s is exposed without RLS and has sensitive columns: %s" % (rel.ident, ", ".join(hits))


def graphql_exposed(ctx, role, attribute):
    if not ctx.graphql or role is None:
        return
    kinds = {"r": "Table", "v": "View", "m": "Materialized view", "f": "Foreign table"}
    for rel in ctx.relations:
        if rel.kind in kinds and getattr(rel, attribute):
            yield rel.ident, "%s %s is visible in the GraphQL schema: %s can SELECT it (revoke SELECT from %s)" % (
                kinds[rel.kind], rel.ident, role, role)


@rule("pg_graphql_anon_table_exposed", WARN, "Public Can See Object in GraphQL Schema")
def pg_graphql_anon_table_exposed(ctx):
    return graphql_exposed(ctx, ctx.anon and ANON_ROLE, "anon_any_column")


@rule("pg_graphql_authenticated_table_exposed", WARN, "Signed-In Users Can See Object in GraphQL Schema")
def pg_graphql_authenticated_table_exposed(ctx):
    return graphql_exposed(ctx, ctx.authenticated and AUTHENTICATED_ROLE, "authenticated_any_column")


AUTH_USERS_VIEWS_SQL = """
select distinct n.nspname, v.relname, v.relkind::text,
       exists (select 1 from unnest(coalesce(v.reloptions, '{}'::text[])) o where lower(o) = any(%(invoker_options)s)),
       u.relrowsecurity
from pg_catalog.pg_class u
join pg_catalog.pg_namespace un on un.oid = u.relnamespace
join pg_catalog.pg_depend d on d.refobjid = u.oid and d.classid = 'pg_catalog.pg_rewrite'::regclass and d.deptype = 'n'
join pg_catalog.pg_rewrite rw on rw.oid = d.objid
join pg_catalog.pg_class v on v.oid = rw.ev_class
join pg_catalog.pg_namespace n on n.oid = v.relnamespace
where un.nspname = 'auth' and u.relname = 'users' and v.oid <> u.oid
  and v.relkind in ('v', 'm')
  and n.nspname = any(%(exposed)s)
  and (coalesce(pg_catalog.has_table_privilege(%(anon)s::oid, v.oid, 'SELECT'), false)
       or coalesce(pg_catalog.has_table_privilege(%(authenticated)s::oid, v.oid, 'SELECT'), false))
order by 1, 2
"""


@rule("auth_users_exposed", ERROR, "Exposed Auth Users")
def auth_users_exposed(ctx):
    for schema, name, kind, invoker, users_rls in ctx.query(AUTH_USERS_VIEWS_SQL):
        if kind == "m" or not invoker or not users_rls:
            what = "Materialized view" if kind == "m" else "View"
            yield qualified(schema, name), "%s %s exposes auth.users to anon or authenticated" % (what, qualified(schema, name))


INSECURE_QUEUES_SQL = """
select n.nspname, c.relname
from pg_catalog.pg_class c
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
where n.nspname = 'pgmq' and c.relname like 'q_%%' and c.relkind in ('r', 'p') and not c.relrowsecurity
  and (coalesce(pg_catalog.has_table_privilege(%(anon)s::oid, c.oid, 'SELECT'), false)
       or coalesce(pg_catalog.has_table_privilege(%(authenticated)s::oid, c.oid, 'SELECT'), false))
order by 1, 2
"""


@rule("insecure_queue_exposed_in_api", ERROR, "Insecure Queue Exposed in API")
def insecure_queue_exposed_in_api(ctx):
    if "pgmq_public" not in ctx.exposed:
        return
    for schema, name in ctx.query(INSECURE_QUEUES_SQL):
        yield qualified(schema, name), "Queue table %s is reachable through pgmq_public without RLS" % qualified(schema, name)


# --------------------------------------------------------------------------- the rules: functions

@rule("function_search_path_mutable", WARN, "Function Search Path Mutable")
def function_search_path_mutable(ctx):
    for fn in ctx.functions:
        if not fn.ext_owned and not fn.fixed_path:
            yield fn.ident, "Function %s has a role mutable search_path: add SET search_path = ''" % fn.ident


def security_definer_executable(ctx, role, attribute):
    if role is None:
        return
    for fn in ctx.functions:
        if fn.security_definer and fn.exposed and getattr(fn, attribute):
            yield fn.ident, "SECURITY DEFINER function %s can be executed by %s through /rest/v1/rpc/%s: revoke EXECUTE from public and %s" % (
                fn.ident, role, fn.name, role)


@rule("anon_security_definer_function_executable", WARN, "Public Can Execute SECURITY DEFINER Function")
def anon_security_definer_function_executable(ctx):
    return security_definer_executable(ctx, ctx.anon and ANON_ROLE, "anon_execute")


@rule("authenticated_security_definer_function_executable", WARN, "Signed-In Users Can Execute SECURITY DEFINER Function")
def authenticated_security_definer_function_executable(ctx):
    return security_definer_executable(ctx, ctx.authenticated and AUTHENTICATED_ROLE, "authenticated_execute")


# --------------------------------------------------------------------------- the rules: schema design

UNINDEXED_FKEYS_SQL = """
select n.nspname, c.relname, k.conname
from pg_catalog.pg_constraint k
join pg_catalog.pg_class c on c.oid = k.conrelid
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
where k.contype = 'f'
  and n.nspname <> all(%(internal)s)
  and not """ + EXT_OWNED % ("pg_catalog.pg_class", "c.oid") + """
  and not exists (
      select 1 from pg_catalog.pg_index x
      where x.indrelid = k.conrelid and x.indisvalid
        and (select array_agg(u.attnum order by u.pos)
             from unnest(x.indkey) with ordinality u(attnum, pos)
             where u.pos <= cardinality(k.conkey)) = k.conkey)
order by 1, 2, 3
"""


@rule("unindexed_foreign_keys", INFO, "Unindexed foreign keys")
def unindexed_foreign_keys(ctx):
    for schema, table, fkey in ctx.query(UNINDEXED_FKEYS_SQL):
        yield qualified(schema, table, fkey), "Foreign key %s on %s has no index starting with its columns" % (fkey, qualified(schema, table))


@rule("no_primary_key", INFO, "No Primary Key")
def no_primary_key(ctx):
    for rel in ctx.user_relations("r"):
        if not rel.has_pk:
            yield rel.ident, "Table %s has no primary key" % rel.ident


INDEXES_SQL = """
select n.nspname, c.relname, c.relkind::text, i.relname, replace(pg_catalog.pg_get_indexdef(i.oid), i.relname, '')
from pg_catalog.pg_index x
join pg_catalog.pg_class i on i.oid = x.indexrelid
join pg_catalog.pg_class c on c.oid = x.indrelid
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
where c.relkind in ('r', 'm')
  and n.nspname <> all(%(internal)s)
  and not """ + EXT_OWNED % ("pg_catalog.pg_class", "c.oid") + """
order by 1, 2, 4
"""


@rule("duplicate_index", WARN, "Duplicate Index")
def duplicate_index(ctx):
    groups = {}
    for schema, table, kind, index, shape in ctx.query(INDEXES_SQL):
        groups.setdefault((schema, table, kind, shape), []).append(index)
    for (schema, table, _kind, _shape), indexes in sorted(groups.items()):
        if len(indexes) > 1:
            yield qualified(schema, table), "Table %s has identical indexes %s: drop all but one" % (
                qualified(schema, table), ", ".join(sorted(indexes)))


REG_COLUMNS_SQL = """
select n.nspname, c.relname, a.attname, t.typname
from pg_catalog.pg_attribute a
join pg_catalog.pg_class c on c.oid = a.attrelid
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
join pg_catalog.pg_type t on t.oid = a.atttypid
join pg_catalog.pg_namespace tn on tn.oid = t.typnamespace
where tn.nspname = 'pg_catalog' and t.typname = any(%(types)s)
  and n.nspname not in ('pg_catalog', 'information_schema', 'pgsodium')
order by 1, 2, 3
"""


@rule("unsupported_reg_types", WARN, "Unsupported reg types")
def unsupported_reg_types(ctx):
    for schema, table, column, typname in ctx.query(REG_COLUMNS_SQL, {"types": list(UNSUPPORTED_REG_TYPES)}):
        yield qualified(schema, table, column), "Column %s of %s has type %s, which blocks pg_upgrade" % (
            column, qualified(schema, table), typname)


FKEYS_TO_AUTH_UNIQUE_SQL = """
select n.nspname, c.relname, k.conname
from pg_catalog.pg_constraint k
join pg_catalog.pg_class c on c.oid = k.conrelid
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
join pg_catalog.pg_class r on r.oid = k.confrelid
join pg_catalog.pg_namespace rn on rn.oid = r.relnamespace
join pg_catalog.pg_index x on x.indexrelid = k.conindid
where k.contype = 'f' and rn.nspname = 'auth' and x.indisunique and not x.indisprimary
order by 1, 2, 3
"""


@rule("fkey_to_auth_unique", ERROR, "Foreign Key to Auth Unique Constraint")
def fkey_to_auth_unique(ctx):
    for schema, table, fkey in ctx.query(FKEYS_TO_AUTH_UNIQUE_SQL):
        yield qualified(schema, table, fkey), "Foreign key %s on %s references a unique constraint of the auth schema (not its primary key)" % (
            fkey, qualified(schema, table))


# --------------------------------------------------------------------------- the rules: extensions, storage

@rule("extension_in_public", WARN, "Extension in Public")
def extension_in_public(ctx):
    rows = ctx.query("""select e.extname from pg_catalog.pg_extension e
                        join pg_catalog.pg_namespace n on n.oid = e.extnamespace
                        where n.nspname = 'public' and e.extname <> 'plpgsql' order by 1""")
    for (name,) in rows:
        yield name, "Extension %s is installed in the public schema: create it in a schema such as extensions" % name


@rule("extension_versions_outdated", WARN, "Extension Versions Outdated")
def extension_versions_outdated(ctx):
    rows = ctx.query("""select a.name, a.installed_version, a.default_version
                        from pg_catalog.pg_available_extensions a
                        where a.installed_version is not null and a.default_version is not null
                          and a.installed_version <> a.default_version
                          and exists (select 1 from pg_catalog.pg_available_extension_versions v
                                      where v.name = a.name and v.installed)
                        order by 1""")
    for name, installed, default in rows:
        yield name, "Extension %s is at version %s, the default version is %s: ALTER EXTENSION %s UPDATE" % (
            name, installed, default, name)


BUCKET_POLICY_RE = re.compile(r"\A\s*\(*\s*bucket_id\s*=\s*('(?:[^']|'')*')(?:\s*::\s*[\w.]+)?\s*\)*\s*\Z", re.I)


@rule("public_bucket_allows_listing", WARN, "Public Bucket Allows Listing")
def public_bucket_allows_listing(ctx):
    columns = ctx.query("""select array(select a.attname::text from pg_catalog.pg_attribute a
                                        where a.attrelid = to_regclass('storage.buckets') and a.attnum > 0 and not a.attisdropped)""")[0][0]
    if not {"id", "name", "public"} <= set(columns):
        return
    buckets = ctx.query("select id::text, name::text from storage.buckets where public order by 1")
    policies = ctx.query("""select policyname::text, qual from pg_catalog.pg_policies
                            where schemaname = 'storage' and tablename = 'objects' and cmd in ('SELECT', 'ALL')
                              and permissive = 'PERMISSIVE' and roles && array['public', 'anon', 'authenticated']::name[]
                            order by 1""")
    for bucket_id, bucket_name in buckets:
        quoted = "'%s'" % bucket_id.replace("'", "''")
        names = []
        for policy, qual in policies:
            match = BUCKET_POLICY_RE.match(qual) if qual is not None else None
            trivial = qual is None or qual.lower().replace(" ", "").replace("\n", "").replace("\t", "") in ALWAYS_TRUE
            if trivial or (match and match.group(1) == quoted):
                names.append(policy)
        if names:
            yield bucket_id, "Public bucket %s has broad SELECT policies on storage.objects (%s): anyone can list its files" % (
                bucket_name, ", ".join(names))


# --------------------------------------------------------------------------- running

@contextmanager
def _session(conn_or_url):
    """A transaction (read-only when the connection is ours) that the lint rolls back,
    with search_path = pg_catalog so that policies print schema-qualified calls (auth.uid()).
    A connection passed in is left as it was found: autocommit, idle, or inside a transaction."""
    owned = not hasattr(conn_or_url, "cursor")
    conn = psycopg2.connect(conn_or_url, connect_timeout=10, application_name="slogate-db-lint") if owned else conn_or_url
    try:
        if owned:
            conn.set_session(readonly=True, autocommit=True)
        if conn.autocommit:
            begin, end = ["BEGIN"], ["ROLLBACK"]
        elif conn.get_transaction_status() == psycopg2.extensions.TRANSACTION_STATUS_IDLE:
            begin, end = [], None  # psycopg2 opens the transaction; conn.rollback() ends it
        else:
            begin, end = ["SAVEPOINT slogate_db_lint"], ["ROLLBACK TO SAVEPOINT slogate_db_lint", "RELEASE SAVEPOINT slogate_db_lint"]
        with conn.cursor() as cur:
            for statement in begin:
                cur.execute(statement)
            try:
                cur.execute("select set_config('search_path', 'pg_catalog', true)")
                yield cur
            finally:
                if end is None:
                    conn.rollback()
                else:
                    for statement in end:
                        cur.execute(statement)
    finally:
        if owned:
            conn.close()


def lint(conn_or_url, schemas=("public",), graphql=None):
    """Every finding of every rule, ERRORs first.

    conn_or_url: a psycopg2 connection (left as it was found) or a libpq URL/DSN.
    schemas: the schemas exposed through the API (None: read pgrst.db_schemas).
    graphql: None to run the pg_graphql rules only when pg_graphql is installed, True/False to force.
    """
    findings = []
    with _session(conn_or_url) as cur:
        ctx = Context(cur, schemas, graphql)
        for item in RULES:
            for obj, detail in item.check(ctx) or ():
                findings.append(Finding(item.name, item.level, item.title, obj, detail))
    return sorted(set(findings), key=lambda f: (LEVEL_ORDER[f.level], f.name, f.object, f.detail))


def blocking(findings):
    """The findings that fail the bar: every ERROR and WARN."""
    return [f for f in findings if f.level in (ERROR, WARN)]


def secrets_of(url):
    """The password in a URL or key=value DSN, raw and URL-encoded, to mask."""
    found = set()
    try:
        parts = urlsplit(url)
        if parts.password:
            found.update((parts.password, unquote(parts.password)))
    except ValueError:
        pass
    for match in re.finditer(r"password\s*=\s*('(?:[^'\\]|\\.)*'|\S+)", url):
        value = match.group(1)
        found.update((value, value.strip("'")))
    for value in re.findall(r"[?&]password=([^&]+)", url):
        found.update((value, unquote(value)))
    return sorted((s for s in found if s), key=len, reverse=True)


def mask(text, secrets):
    for secret in secrets:
        text = text.replace(secret, "********")
    return text


def main(argv=None):
    parser = argparse.ArgumentParser(description="Lint a database with the rules of Supabase's database linter (splinter).")
    parser.add_argument("db_url", help="libpq URL or DSN of the database")
    parser.add_argument("--schemas", default="public", help="comma-separated schemas exposed through the API (default: public)")
    parser.add_argument("--graphql", choices=("auto", "on", "off"), default="auto",
                        help="pg_graphql rules: auto (when pg_graphql is installed), on (assume it is), off")
    options = parser.parse_args(argv)
    secrets = secrets_of(options.db_url)
    schemas = [s.strip() for s in options.schemas.split(",") if s.strip()]
    graphql = {"auto": None, "on": True, "off": False}[options.graphql]
    try:
        findings = lint(options.db_url, schemas=schemas, graphql=graphql)
    except psycopg2.Error as exc:
        message = " ".join(str(exc).split()) or exc.__class__.__name__
        sys.stderr.write("db_lint: %s\n" % mask(message, secrets))
        return 2
    for finding in findings:
        print(mask(str(finding), secrets))
    failing = blocking(findings)
    counts = ", ".join("%d %s" % (sum(1 for f in findings if f.level == lvl), lvl) for lvl in (ERROR, WARN, INFO))
    sys.stderr.write("db_lint: %d findings (%s)%s\n" % (len(findings), counts, ": FAIL" if failing else ""))
    return 1 if failing else 0


if __name__ == "__main__":
    sys.exit(main())
