# -*- coding: utf-8 -*-
# Copyright: slogate.supabase contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The native migration engine: reads a Supabase project, plans with
migration_plan, and runs files on a Database exactly as `supabase db push`
does (history table, per-file transactions, RESET ALL between files), plus an
advisory lock so two runs never collide.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import time
from dataclasses import dataclass, field
from typing import Dict, List, Tuple

from ansible_collections.slogate.supabase.plugins.module_utils.errors import (
    ConfigurationError,
    QueryFailure,
    SlogateError,
)
from ansible_collections.slogate.supabase.plugins.module_utils.migration_plan import (
    AppliedMigration,
    LocalMigration,
)
from ansible_collections.slogate.supabase.plugins.module_utils.migrations import (
    decode_migration,
    discover,
    has_transaction_control,
    is_comment_only,
    needs_own_transaction,
    split_statements,
    transaction_mode,
)
from ansible_collections.slogate.supabase.plugins.module_utils.postgres import sql

HISTORY_TABLE = "supabase_migrations.schema_migrations"
# One key for every run of this engine on a database, whatever the project.
ADVISORY_LOCK_KEY = 0x5109A7E5_0000_0001
LOCK_POLL_SECONDS = 0.2

CREATE_HISTORY = (
    "SET LOCAL lock_timeout = '4s'",
    "CREATE SCHEMA IF NOT EXISTS supabase_migrations",
    "CREATE TABLE IF NOT EXISTS supabase_migrations.schema_migrations (version text NOT NULL PRIMARY KEY)",
    "ALTER TABLE supabase_migrations.schema_migrations ADD COLUMN IF NOT EXISTS statements text[]",
    "ALTER TABLE supabase_migrations.schema_migrations ADD COLUMN IF NOT EXISTS name text",
)

HISTORY_COLUMNS = """
SELECT count(*) AS columns FROM pg_catalog.pg_attribute
WHERE attrelid = pg_catalog.to_regclass('supabase_migrations.schema_migrations')
  AND attname IN ('version', 'statements', 'name') AND NOT attisdropped
"""


class MigrationFailure(SlogateError):
    """A file failed; the message names the file, the statement and its line."""


class LockTimeout(SlogateError):
    """Another run held the migration lock for longer than we were allowed to wait."""


@dataclass
class Project:
    """A Supabase project's migrations and down scripts as the engine needs them."""

    directory: str
    local: List[LocalMigration] = field(default_factory=list)
    statements: Dict[str, list] = field(default_factory=dict)   # version -> [Statement]
    contents: Dict[str, str] = field(default_factory=dict)      # version -> file text
    modes: Dict[str, str] = field(default_factory=dict)         # version -> transaction mode
    rollbacks: Dict[str, str] = field(default_factory=dict)     # version -> down script path
    skipped: List[Tuple[str, str]] = field(default_factory=list)

    def rollback_path(self, version, name):
        return self.rollbacks.get(version) or os.path.join(
            self.directory, "supabase", "rollbacks", "%s_%s.sql" % (version, name or ""))


def read_text(path):
    """A migration file as the CLI reads it (CRLF kept, a BOM dropped, bad UTF-8 replaced),
    so the statements stored match the CLI's byte for byte."""
    with open(path, "rb") as handle:
        return decode_migration(handle.read())


def load_project(project_dir):
    """Read supabase/migrations (and supabase/rollbacks) of a project."""
    migrations_dir = os.path.join(project_dir, "supabase", "migrations")
    if not os.path.isdir(migrations_dir):
        raise ConfigurationError("%s has no supabase/migrations folder: point project_dir at the folder that holds supabase/"
                                 % project_dir)
    entries = os.listdir(migrations_dir)
    folders = [name for name in entries if os.path.isdir(os.path.join(migrations_dir, name))]
    files, skipped = discover([name for name in entries if name not in folders], folders)
    project = Project(directory=project_dir, skipped=list(skipped))
    for migration in files:
        path = os.path.join(migrations_dir, migration.filename)
        try:
            text = read_text(path)
        except OSError as exc:
            raise ConfigurationError("cannot read migration %s: %s" % (migration.filename, exc.strerror))
        statements = split_statements(text)
        project.contents[migration.version] = text
        project.modes[migration.version] = transaction_mode(text)
        project.statements[migration.version] = statements
        project.local.append(LocalMigration(migration.version, migration.name, migration.filename,
                                            tuple(s.text for s in statements)))
    rollbacks_dir = os.path.join(project_dir, "supabase", "rollbacks")
    if os.path.isdir(rollbacks_dir):
        rollback_files, dummy = discover(sorted(os.listdir(rollbacks_dir)))
        for rollback in rollback_files:
            project.rollbacks[rollback.version] = os.path.join(rollbacks_dir, rollback.filename)
    return project


class Engine(object):
    """Runs migration files on a Database the way the Supabase CLI does."""

    def __init__(self, db, session_settings=(), defer_flush=False):
        self.db = db
        self.executed_statements = 0
        # Commit files without waiting for their WAL flush, then flush once (make_durable). The flush needs a
        # transaction that writes WAL: it creates a temporary table, so only when the user may.
        self.defer_flush = defer_flush
        self.unflushed = False
        # RESET ALL between files drops every session setting; these are put back.
        self.reset_sql = "RESET ALL" + "".join(
            sql.SQL("; SELECT pg_catalog.set_config({}, {}, false)").format(
                sql.Literal(name), sql.Literal(value)).as_string(db.connection)
            for name, value in session_settings if value is not None)

    # -- history -------------------------------------------------------------------
    def history_ready(self):
        self._autocommit(True)
        return self.db.fetch_one(HISTORY_COLUMNS, record=False)["columns"] == 3

    def read_history(self):
        if not self.history_ready():
            return []
        rows = self.db.fetch_all("SELECT version, name, statements FROM supabase_migrations.schema_migrations ORDER BY version",
                                 record=False)
        return [AppliedMigration(r["version"], r["name"], None if r["statements"] is None else tuple(r["statements"]))
                for r in rows]

    def ensure_history(self):
        if self.history_ready():
            return False
        self._autocommit(False)
        try:
            for statement in CREATE_HISTORY:
                self.db.execute(statement, record=False)
            self.db.commit()
        except QueryFailure as exc:
            self.db.rollback()
            raise MigrationFailure("cannot create %s: %s" % (HISTORY_TABLE, exc))
        return True

    # -- lock ----------------------------------------------------------------------
    def acquire_lock(self, wait_seconds):
        """Poll for the advisory lock with no transaction open (a blocking wait can
        deadlock with another run's CREATE INDEX CONCURRENTLY)."""
        self._autocommit(True)
        deadline = time.monotonic() + wait_seconds
        while True:
            if self.db.fetch_one("SELECT pg_catalog.pg_try_advisory_lock(%s) AS locked", (ADVISORY_LOCK_KEY,),
                                 record=False)["locked"]:
                return
            if time.monotonic() >= deadline:
                holder = self.db.fetch_one(
                    "SELECT a.pid, a.application_name, a.client_addr::text AS client FROM pg_catalog.pg_locks l "
                    "JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid "
                    "WHERE l.locktype = 'advisory' AND l.granted AND l.objid = (%s::bigint & 4294967295)::oid LIMIT 1",
                    (ADVISORY_LOCK_KEY,), record=False)
                who = "pid %(pid)s (%(application_name)s)" % holder if holder else "another session"
                raise LockTimeout("another migration run (%s) held the migration lock for more than %s seconds"
                                  % (who, wait_seconds))
            time.sleep(LOCK_POLL_SECONDS)

    def release_lock(self):
        self._autocommit(True)
        self.db.execute("SELECT pg_catalog.pg_advisory_unlock(%s)", (ADVISORY_LOCK_KEY,), record=False)

    def end_run(self, failing=False):
        """Make every commit of the run durable, then release the migration lock. When the run is already failing,
        a failure to flush is not raised: it would hide the failure that ended the run."""
        try:
            self.make_durable()
        except MigrationFailure:
            if not failing:
                raise
        finally:
            self.release_lock()

    def make_durable(self):
        """Wait until the WAL of every file committed by this run is flushed (and, with synchronous replication,
        confirmed). A synchronous commit flushes all WAL written before it, but only waits when its own transaction
        wrote some: a temporary table dropped at commit writes catalog rows and leaves nothing behind."""
        if self.unflushed:
            self._autocommit(True)
            try:
                self.db.execute("BEGIN; CREATE TEMPORARY TABLE slogate_wal_flush () ON COMMIT DROP; COMMIT", record=False)
            except QueryFailure as exc:
                self._rollback_quietly()
                raise MigrationFailure("the files were committed, but waiting for their WAL flush failed (%s): check "
                                       "the server before relying on them" % exc)
            self.unflushed = False

    # -- running files -----------------------------------------------------------------
    def apply(self, migration, statements, mode="transactional"):
        """Run one migration file and record it; returns its duration in ms."""
        record = sql.SQL("INSERT INTO supabase_migrations.schema_migrations (version, name, statements) "
                         "VALUES ({}, {}, {}::text[])").format(
            sql.Literal(migration.version), sql.Literal(migration.name), sql.Literal(list(migration.statements)))
        return self._run_file(migration.filename, statements, record, mode)

    def revert(self, applied, rollback_filename, text):
        """Run one down script and remove its version from the history; returns its duration in ms."""
        forget = sql.SQL("DELETE FROM supabase_migrations.schema_migrations WHERE version = {}").format(
            sql.Literal(applied.version))
        return self._run_file(rollback_filename, split_statements(text), forget, transaction_mode(text))

    def forget(self, applied):
        """Remove a version from the history without undoing it."""
        self._autocommit(True)
        self.db.execute("DELETE FROM supabase_migrations.schema_migrations WHERE version = %s", (applied.version,),
                        record=False)

    def _run_file(self, filename, statements, bookkeeping, mode):
        started = time.monotonic()
        self._autocommit(True)
        texts = [s.text for s in statements]
        if mode != "none" and not has_transaction_control(texts) and not any(needs_own_transaction(t) for t in texts):
            return self._run_batch(filename, statements, bookkeeping, started)
        self.db.execute(self.reset_sql, record=False)
        if mode == "none" or has_transaction_control(texts):
            # The file manages its own transactions (or asks for none): every statement on its own, as the CLI sends them.
            for position, statement in enumerate(statements, start=1):
                self._execute(filename, position, statement, committed_before=True)
            self.db.execute(bookkeeping, record=False)
            return self._elapsed(started)
        self._autocommit(False)
        committed = False
        for position, statement in enumerate(statements, start=1):
            if needs_own_transaction(statement.text):
                self.db.commit()  # what came before stays, as with the CLI
                committed = committed or position > 1
                self._autocommit(True)
                self._execute(filename, position, statement, committed_before=committed)
                committed = True
                self._autocommit(False)
            else:
                self._execute(filename, position, statement, committed_before=committed)
        try:
            self.db.execute(bookkeeping, record=False)
        except QueryFailure as exc:
            self._rollback_quietly()
            raise MigrationFailure("%s: recording it in %s failed: %s" % (filename, HISTORY_TABLE, exc))
        self.db.commit()
        return self._elapsed(started)

    def _run_batch(self, filename, statements, bookkeeping, started):
        """A file that runs in one transaction, sent in one round trip: RESET ALL (and the session settings), then
        its statements and its history row between BEGIN and COMMIT. Round trips per statement cost more than the
        server's work for a small file."""
        sent = [s for s in statements if not is_comment_only(s.text)]
        # The commit does not wait for its WAL flush, which costs a disk sync per file: end_run() waits once for all
        # of them. A crash in between loses at most the last files, each whole with its history row, never part of one.
        # A newline before each separator: a statement may end in a -- comment.
        head = [self.reset_sql, "BEGIN"] + (["SET LOCAL synchronous_commit = off"] if self.defer_flush else [])
        script = "\n;\n".join(head + [s.text for s in sent] + [bookkeeping.as_string(self.db.connection), "COMMIT"])
        try:
            self.db.execute(script, record=False)
        except QueryFailure as exc:
            self._rollback_quietly()
            raise self._pinpoint(filename, statements, bookkeeping, exc)
        self.unflushed = self.defer_flush
        self.executed_statements += len(sent)
        return self._elapsed(started)

    def _pinpoint(self, filename, statements, bookkeeping, batch_error):
        """The batch failed and was rolled back: run the file again statement by statement, in a transaction that
        is always rolled back, to name the statement (number and line) that fails. Returns the MigrationFailure."""
        self._autocommit(False)
        try:
            self.db.execute(self.reset_sql, record=False)
            for position, statement in enumerate(statements, start=1):
                if is_comment_only(statement.text):
                    continue
                try:
                    self.db.execute(statement.text, record=False)
                except QueryFailure as exc:
                    return MigrationFailure("migration %s, statement %d (line %d): %s" % (
                        filename, position, statement.line, exc))
            try:
                self.db.execute(bookkeeping, record=False)
            except QueryFailure as exc:
                return MigrationFailure("%s: recording it in %s failed: %s" % (filename, HISTORY_TABLE, exc))
            return MigrationFailure("migration %s: %s (run again statement by statement, it passed; nothing was "
                                    "applied)" % (filename, batch_error))
        finally:
            self._rollback_quietly()
            self._autocommit(True)

    def _execute(self, filename, position, statement, committed_before):
        if is_comment_only(statement.text):
            return  # stored in the history like the CLI does, but the driver cannot send it
        try:
            self.db.execute(statement.text, record=False)
        except QueryFailure as exc:
            self._rollback_quietly()
            kept = (" (statements before it were committed: the file holds a statement that cannot run in a "
                    "transaction, or its own transaction control)") if committed_before else ""
            raise MigrationFailure("migration %s, statement %d (line %d): %s%s" % (
                filename, position, statement.line, exc, kept))
        self.executed_statements += 1

    def _autocommit(self, value):
        if self.db.connection.autocommit != value:
            if self.db.in_transaction():
                self.db.commit()
            self.db.connection.autocommit = value

    def _rollback_quietly(self):
        """Leave no open or aborted transaction behind a failure, also one the file began itself."""
        if self.db.connection.autocommit:
            if self.db.in_transaction():
                self.db.connection.cursor().execute("ROLLBACK")
        else:
            self.db.rollback()

    @staticmethod
    def _elapsed(started):
        return round((time.monotonic() - started) * 1000, 3)
