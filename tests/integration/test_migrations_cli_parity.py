"""module_utils/migrations.py against the real Supabase CLI (pinned in package.json).

A corpus of tricky migration files is pushed with `supabase db push`; the
statements the CLI stores for each file must equal split_statements of the
file, byte for byte. discover must agree with the CLI on which files it skips
and in which order it applies the rest, and the run-time classification
(needs_own_transaction, has_transaction_control, transaction_mode) must match
what the CLI was seen to commit when a file fails half-way.
"""

import re

import pytest

from ansible_collections.slogate.supabase.plugins.module_utils.migrations import (
    SKIP_BAD_NAME,
    cli_runs_alone,
    decode_migration,
    discover,
    has_transaction_control,
    needs_own_transaction,
    parse_filename,
    split_statements,
    transaction_mode,
)
from supabase_cli import SupabaseCli

pytestmark = pytest.mark.integration

HISTORY_SQL = "SELECT version, name, statements FROM supabase_migrations.schema_migrations ORDER BY version"
RELATIONS_SQL = "SELECT coalesce(array_agg(relname::text ORDER BY relname), '{}') FROM pg_class WHERE relnamespace = 'public'::regnamespace"
SKIPPING = re.compile(r"Skipping migration (.*?)\.\.\. \((.*?)\)\n", re.DOTALL)

# Each file is valid SQL on PostgreSQL 15 and 18, so the CLI stores all of them.
CORPUS = [
    ("empty", ""),
    ("blank", "  \n\n\t\r\n"),
    ("comments_only", "-- only a comment; with a semicolon\n/* and a block; 'quote' */\n"),
    ("single_quotes", "create table sq (v text);\ninsert into sq values ('it''s; here'), (';');\nselect 'a;b' as x"),
    ("e_strings", "insert into sq values (E'it\\'s; an E string'), (e'back\\\\slash;'), (E'\\\\');\n"
                  "insert into sq values (E'first\\'s'\n  'continued; here');\nselect 1"),
    ("standard_backslash", "insert into sq values ('C:\\dir\\');\nselect 2"),
    ("identifiers", 'create table "we;ird ""t""" (x int);\nselect 1 as "a;b", 2 as "it\'s";\n'
                    "create table t$1 (a$b int);\nselect a$b from t$1"),
    ("dollar_quotes", "create function dq1() returns text language sql as $$ select 'a;b' $$;\n"
                      "create function dq2() returns int language plpgsql as $body$\nbegin\n  perform 1;\n  return 2;\nend;\n$body$;\n"
                      "do $$ begin perform 1; end $$;\n"
                      "select $a$ $b$ ; $b$ ; $a$ as nested, $é$ ; $é$ as unicode_tag"),
    ("parameters", "create function p1(int) returns int language sql return $1 + 1;\n"
                   "create function p2(a int, b int) returns int language sql return $1+$2;\n"
                   "create function p3(int) returns int language sql as 'select $1;'"),
    ("line_comments", "select 1; -- it's; a comment\nselect 2 -- trailing ; note\n;\n-- last comment; no newline"),
    ("block_comments", "/* outer /* inner ; ' */ still ; \" */ select 3;\nselect /* ; */ 4;\n/*/ ; */ select 5;\n"
                       "select 6 /* */* 2;\n/* /* */* ; */ select 7"),
    ("begin_atomic", "create function ba1() returns int language sql\nbegin atomic\n  select 1;\n  select 2;\nend;\n"
                     "create function ba2(x int) returns text language sql begin atomic "
                     "select case when x > 0 then 'p' else 'n' end; end;\n"
                     "create procedure ba3() language sql BEGIN\n\tAtomic select 1 as spend; select 2 as \"end\"; END;\n"
                     "select ba1()"),
    ("parentheses", "create table pl (x int);\ncreate table pt (x int);\n"
                    "create rule pr as on insert to pt do also (insert into pl select 1; insert into pl select 2);\n"
                    "select ((1 + 2) * 3)"),
    ("no_trailing_semicolon", "select 1;\nselect 2   \n\n  "),
    ("crlf", "create table crlf (x int);\r\n-- two\r\ninsert into crlf values (1);\r\n\r\nselect 3\r\n"),
    ("bom", "\ufeffcreate table bom (x int);\nselect 1;\n".encode("utf-8")),
    ("empty_statements", "select 1;;;\n;select 2;"),
    ("javascript_trim", "\u00a0select 1 as a\u2028;select 2 as b\u0085;\tselect 3 as c\f;"),
    ("unicode", "select 'é😀;' as \"ü;\", $$ñ;$$ as d"),
    ("transaction_control", "create table tc (x int);\nbegin;\ninsert into tc values (1);\ncommit;\n"
                            "start transaction;\ninsert into tc values (2);\nend;"),
    ("concurrently", "create table ci (x int);\n-- built outside the transaction\ncreate index concurrently ci_x on ci (x);\n"
                     "insert into ci values (1)"),
    ("no_transaction", "-- pg-delta: transaction=false\nvacuum sq;\nselect 1;"),
    ("lone_cr", "select 1; -- c\rselect 2;\rselect 3"),
    ("invalid_utf8", b"select '\xff' as x;\n"),
    ("refused_first_in_batch", "drop database if exists slogate_never_created;\nselect 1"),
]
CORPUS_FILES = {"2024010100%04d_%s.sql" % (number, name): content for number, (name, content) in enumerate(CORPUS, 1)}


def as_bytes(content):
    return content if isinstance(content, bytes) else content.encode("utf-8")


def history(db):
    return {version: (name, statements) for version, name, statements in db.execute(HISTORY_SQL)}


def test_corpus_is_stored_as_split_statements_says(pg_db, supabase_cli):
    for filename, content in CORPUS_FILES.items():
        (supabase_cli.migrations_dir / filename).write_bytes(as_bytes(content))
    rc, out, err = supabase_cli.push(pg_db.url)
    assert rc == 0, out + err
    assert "Skipping" not in err
    expected = {}
    for filename, content in CORPUS_FILES.items():
        version, name = parse_filename(filename)
        expected[version] = (name, [statement.text for statement in split_statements(decode_migration(as_bytes(content)))])
    assert history(pg_db) == expected
    assert len(expected) == len(CORPUS) >= 20


def test_corpus_shapes():
    """The corpus covers what it claims: a few stored arrays spelled out."""
    files = {name: decode_migration(as_bytes(content)) for name, content in CORPUS}
    texts = {name: [statement.text for statement in split_statements(sql)] for name, sql in files.items()}
    assert texts["empty"] == [] and texts["blank"] == []
    assert texts["comments_only"] == ["-- only a comment; with a semicolon\n/* and a block; 'quote' */"]
    assert texts["crlf"] == ["create table crlf (x int)", "-- two\r\ninsert into crlf values (1)", "select 3"]
    assert texts["bom"] == ["create table bom (x int)", "select 1"]
    assert texts["javascript_trim"] == ["select 1 as a", "select 2 as b\u0085", "select 3 as c"]
    assert texts["invalid_utf8"] == ["select '\ufffd' as x"]
    assert len(texts["begin_atomic"]) == 4 and len(texts["parentheses"]) == 4
    assert has_transaction_control(texts["transaction_control"])
    assert [cli_runs_alone(text) for text in texts["concurrently"]] == [False, True, False]
    assert transaction_mode(files["no_transaction"]) == "none"
    assert needs_own_transaction(texts["refused_first_in_batch"][0])


NAMES = ["README.md", ".gitkeep", "1_a.sql", "10_b.sql", "2_c.sql", "0001_d.sql", "1_.sql", "5_x y.sql", "6_é.sql",
         "1_a.SQL", "1_a.sql.txt", "1a.sql", "a_1.sql", "7_a\rb.sql", "8_a\u2028b.sql", "20200101000000_init.sql",
         "5_a.sql", "3_c.sql.sql"]


def dry_run(cli, db):
    result = cli.push(db.url, dry_run=True, output_format="json")
    assert result.returncode == 0, result.stdout + result.stderr
    return result.json()["migrations"], SKIPPING.findall(result.stderr)


def test_discover_agrees_with_the_cli(pg_db, supabase_cli):
    for filename in NAMES:
        supabase_cli.write_migration(filename, "select 1;\n")
    (supabase_cli.migrations_dir / "4_folder.sql").mkdir()
    pushed, skipped = dry_run(supabase_cli, pg_db)
    files, skips = discover(NAMES, ["4_folder.sql"])
    assert [item.filename for item in files] == pushed
    # The wrapper reads the CLI's output as text, where a CR in a file name becomes LF.
    assert [(name.replace("\r", "\n"), reason) for name, reason in skips] == skipped
    assert pushed[:3] == ["0001_d.sql", "1_.sql", "1_a.sql"]  # by version as text: 1 < 10 < 2
    assert ("7_a\rb.sql", SKIP_BAD_NAME) in skips
    listing = supabase_cli.migration_list(pg_db.url)
    assert [row["local"] for row in listing["migrations"]] == [item.version for item in files]


LAYOUTS = {  # name: (files, sub-folders)
    "legacy init first": (["20200101000000_init.sql", "20220101000000_x.sql"], []),
    "legacy init after a folder": (["20200101000000_init.sql"], ["0_dir"]),
    "legacy init before a folder": (["20200101000000_init.sql"], ["30_dir"]),
    "legacy init not first": (["0_a.sql", "20200101000000_init.sql"], []),
    "init on the threshold": (["20211209000000_init.sql"], []),
    "init unanchored, 15 digits": (["120200101000000_init.sql"], []),
    "init unanchored, suffix": (["20200101000000_init.sql.bak", "3_a.sql"], []),
    "init in upper case": (["20200101000000_INIT.sql"], []),
}


@pytest.mark.parametrize("files, folders", list(LAYOUTS.values()), ids=list(LAYOUTS))
def test_legacy_init_rule_agrees_with_the_cli(pg_db, supabase_cli_bin, tmp_path, files, folders):
    cli = SupabaseCli(tmp_path / "layout", binary=supabase_cli_bin)
    cli.migrations_dir.mkdir(parents=True)
    for name in folders:
        (cli.migrations_dir / name).mkdir()
    for name in files:
        cli.write_migration(name, "select 1;\n")
    pushed, skipped = dry_run(cli, pg_db)
    found, skips = discover(files, folders)
    assert ([item.filename for item in found], skips) == (pushed, skipped)


# 18 says "cannot run inside a transaction block", 15 "cannot be executed within a pipeline".
REFUSED = "SQLSTATE 25001"
# name: (file, the CLI succeeds, relations left in public afterwards, error the CLI prints)
RUNS = {
    "a plain file is one transaction": (
        "create table r1 (x int);\nselect 1/0;", False, [], "division by zero"),
    "a statement the CLI runs alone commits what came before": (
        "create table r1 (x int);\ncreate index concurrently r1_x on r1 (x);\ncreate table r2 (x int);\nselect 1/0;",
        False, ["r1", "r1_x"], "division by zero"),
    "with its own transaction control each statement runs on its own": (
        "create table r1 (x int);\nbegin;\ncreate table r2 (x int);\ncommit;\ncreate table r3 (x int);\nselect 1/0;",
        False, ["r1", "r2", "r3"], "division by zero"),
    "a file with the pg-delta header autocommits": (
        "-- pg-delta: transaction=false\ncreate table r1 (x int);\nselect 1/0;", False, ["r1"], "division by zero"),
    "a refused statement first in its batch runs": (
        "drop database if exists slogate_never_created;\ncreate table r1 (x int);", True, ["r1"], None),
    "a refused statement after one the CLI runs alone runs": (
        "create table r1 (x int);\ncreate index concurrently r1_x on r1 (x);\n"
        "drop database if exists slogate_never_created;\ncreate table r2 (x int);", True, ["r1", "r1_x", "r2"], None),
    "a refused statement later in its batch fails": (
        "create table r1 (x int);\ndrop database if exists slogate_never_created;", False, [], REFUSED),
}


@pytest.mark.parametrize("sql, succeeds, relations, error", list(RUNS.values()), ids=list(RUNS))
def test_how_the_cli_runs_a_file(pg_db, supabase_cli, sql, succeeds, relations, error):
    supabase_cli.write_migration("20240201000000_run.sql", sql)
    rc, out, err = supabase_cli.push(pg_db.url)
    assert (rc == 0) == succeeds, out + err
    assert error is None or error in err, err
    assert sorted(pg_db.scalar(RELATIONS_SQL)) == relations
    texts = [statement.text for statement in split_statements(sql)]
    assert history(pg_db) == ({"20240201000000": ("run", texts)} if succeeds else {})


def test_the_runs_are_classified_like_the_cli():
    """What the engine reads from each file of RUNS, in the same order."""
    shapes = []
    for sql, _succeeds, _relations, _error in RUNS.values():
        texts = [statement.text for statement in split_statements(sql)]
        shapes.append((transaction_mode(sql), has_transaction_control(texts),
                       [cli_runs_alone(text) for text in texts], [needs_own_transaction(text) for text in texts]))
    assert shapes == [
        ("transactional", False, [False, False], [False, False]),
        ("transactional", False, [False, True, False, False], [False, True, False, False]),
        ("transactional", True, [False] * 6, [False] * 6),
        ("none", False, [False, False], [False, False]),
        ("transactional", False, [False, False], [True, False]),
        ("transactional", False, [False, True, False, False], [False, True, True, False]),
        ("transactional", False, [False, False], [False, True]),
    ]
