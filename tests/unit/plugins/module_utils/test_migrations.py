"""Unit tests of module_utils/migrations.py: the Supabase CLI 3.1.0's file rules and splitter.

Every expectation in these tables is what CLI 3.1.0 does (the integration test
tests/integration/test_migrations_cli_parity.py pushes the same kinds of file
with the real CLI and compares what it stores).
"""

import re

import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from ansible_collections.slogate.supabase.plugins.module_utils.migrations import (
    MIGRATION_FILENAME,
    SKIP_BAD_NAME,
    SKIP_LEGACY_INIT,
    MigrationFile,
    Statement,
    cli_runs_alone,
    decode_migration,
    discover,
    has_transaction_control,
    is_comment_only,
    is_transaction_control,
    needs_own_transaction,
    parse_filename,
    split_statements,
    transaction_mode,
)
from ansible_collections.slogate.supabase.plugins.module_utils import migrations

# ---------------------------------------------------------------- file names

# filename: (version, name) or None
FILENAMES = {
    "20240501120000_add_cache.sql": ("20240501120000", "add_cache"),
    "1_a.sql": ("1", "a"),
    "0001_padded.sql": ("0001", "padded"),
    "1_.sql": ("1", ""),
    "1_a.sql.sql": ("1", "a.sql"),
    "1_with space.sql": ("1", "with space"),
    "1_a_b_c.sql": ("1", "a_b_c"),
    "6_é.sql": ("6", "é"),
    "12345678901234567_long.sql": ("12345678901234567", "long"),
    "1_a.SQL": None,
    "1_a.sql.txt": None,
    "1a.sql": None,
    "a_1.sql": None,
    "_1.sql": None,
    ".hidden.sql": None,
    "1-a.sql": None,
    "README.md": None,
    "1_a\rb.sql": None,  # JavaScript's "." stops at line terminators
    "1_a\u2028b.sql": None,
    "1_a.sql\n": None,  # "$" is the end of the name, not the end of a line
    "١_arabic_digit.sql": None,  # [0-9] only
}


@pytest.mark.parametrize("filename, expected", list(FILENAMES.items()), ids=[repr(name) for name in FILENAMES])
def test_parse_filename(filename, expected):
    assert parse_filename(filename) == expected
    assert bool(MIGRATION_FILENAME.match(filename)) == (expected is not None)


# name: (filenames, directories, expected order, expected skipped)
DISCOVER = {
    "versions sort as text, not by name": (
        ["10_b.sql", "1_a.sql", "2_c.sql"], [], ["1_a.sql", "10_b.sql", "2_c.sql"], []),
    "same version keeps name order": (
        ["5_b.sql", "5_a.sql", "0005_c.sql"], [], ["0005_c.sql", "5_a.sql", "5_b.sql"], []),
    "bad names are skipped in name order": (
        ["README.md", "1_a.sql", "1_a.SQL", ".gitkeep"], [], ["1_a.sql"],
        [(".gitkeep", SKIP_BAD_NAME), ("1_a.SQL", SKIP_BAD_NAME), ("README.md", SKIP_BAD_NAME)]),
    "legacy init first is skipped": (
        ["20200101000000_init.sql", "20220101000000_x.sql"], [], ["20220101000000_x.sql"],
        [("20200101000000_init.sql", SKIP_LEGACY_INIT)]),
    "legacy init not first is applied": (
        ["0_a.sql", "20200101000000_init.sql"], [], ["0_a.sql", "20200101000000_init.sql"], []),
    "a folder sorted first protects the init file": (
        ["20200101000000_init.sql"], ["0_dir"], ["20200101000000_init.sql"], []),
    "a folder sorted later does not": (
        ["20200101000000_init.sql"], ["30_dir"], [], [("20200101000000_init.sql", SKIP_LEGACY_INIT)]),
    "folders are ignored silently": (
        ["1_a.sql"], ["2_b.sql"], ["1_a.sql"], []),
    "init on the threshold is applied": (
        ["20211209000000_init.sql"], [], ["20211209000000_init.sql"], []),
    "init one second before is skipped": (
        ["20211208235959_init.sql"], [], [], [("20211208235959_init.sql", SKIP_LEGACY_INIT)]),
    "init rule is not anchored (15 digits)": (
        ["120200101000000_init.sql"], [], [], [("120200101000000_init.sql", SKIP_LEGACY_INIT)]),
    "init rule is not anchored (suffix)": (
        ["20200101000000_init.sql.bak", "3_a.sql"], [], ["3_a.sql"], [("20200101000000_init.sql.bak", SKIP_LEGACY_INIT)]),
    "init rule is not anchored (prefix)": (
        ["1_20200101000000_init.sql"], [], [], [("1_20200101000000_init.sql", SKIP_LEGACY_INIT)]),
    "init rule is case-sensitive": (
        ["20200101000000_INIT.sql"], [], ["20200101000000_INIT.sql"], []),
    "a hidden file sorts first": (
        [".keep", "20200101000000_init.sql"], [], ["20200101000000_init.sql"], [(".keep", SKIP_BAD_NAME)]),
    "empty folder": ([], [], [], []),
}


@pytest.mark.parametrize("filenames, directories, order, skipped", list(DISCOVER.values()), ids=list(DISCOVER))
def test_discover(filenames, directories, order, skipped):
    files, skips = discover(filenames, directories)
    assert [item.filename for item in files] == order
    assert skips == skipped
    for item in files:
        assert (item.version, item.name) == parse_filename(item.filename)


def test_discover_returns_migration_files():
    files, _skipped = discover(iter(["2_b.sql", "1_a.sql"]))
    assert files == [MigrationFile("1", "a", "1_a.sql"), MigrationFile("2", "b", "2_b.sql")]


def test_discover_sorts_names_by_utf8_bytes():
    # U+FF3F (fullwidth low line) sorts after "_" and after ASCII letters, as its UTF-8 bytes do.
    files, skipped = discover(["1_z.sql", "1_\uff3f.sql", "1_A.sql"])
    assert [item.filename for item in files] == ["1_A.sql", "1_z.sql", "1_\uff3f.sql"]
    assert skipped == []


@given(st.lists(st.from_regex(r"\A[0-9]{1,4}_[a-z]{0,3}\.sql\Z") | st.from_regex(r"\A[a-z0-9_.]{1,8}\Z"), unique=True))
def test_discover_partitions_the_names(names):
    files, skipped = discover(names)
    assert sorted([item.filename for item in files] + [name for name, _reason in skipped]) == sorted(names)
    versions = [item.version for item in files]
    assert versions == sorted(versions)


# ---------------------------------------------------------------- splitting

# name: (file text, [(statement, line), ...]) -- exactly what the CLI stores, and where each statement begins.
SPLIT = {
    "empty file": ("", []),
    "blank file": (" \n\t\n  \r\n", []),
    "only semicolons": (";;\n ; ;", []),
    "one statement": ("select 1;", [("select 1", 1)]),
    "no trailing semicolon": ("select 1;\nselect 2", [("select 1", 1), ("select 2", 2)]),
    "trailing blanks": ("select 1 ;  \n\n  select 2  \n\n", [("select 1", 1), ("select 2", 3)]),
    "empty statements dropped": ("select 1;;;\n;select 2;", [("select 1", 1), ("select 2", 2)]),
    "leading blank lines": ("\n\n  select 1;", [("select 1", 3)]),
    "comments only": ("-- a comment\n/* a block */\n", [("-- a comment\n/* a block */", 1)]),
    "comment stays with its statement": (
        "select 1;\n\n-- about two\nselect 2;", [("select 1", 1), ("-- about two\nselect 2", 3)]),
    "comment at the end without newline": ("select 1;\n-- the end", [("select 1", 1), ("-- the end", 2)]),
    "line comment with semicolon and quote": (
        "select 1; -- it's; here\nselect 2 -- trailing ; note\n;",
        [("select 1", 1), ("-- it's; here\nselect 2 -- trailing ; note", 1)]),
    "single quotes": ("select 'a;b' as x; select ';'", [("select 'a;b' as x", 1), ("select ';'", 1)]),
    "doubled single quote": ("select 'it''s; here' as x;\nselect 2", [("select 'it''s; here' as x", 1), ("select 2", 2)]),
    "standard string ends at a quote after a backslash": (
        "select 'C:\\dir\\' as p; select 2", [("select 'C:\\dir\\' as p", 1), ("select 2", 1)]),
    "E string with escaped quote": (
        "select E'it\\'s; here' as x; select 2", [("select E'it\\'s; here' as x", 1), ("select 2", 1)]),
    "lower-case e string": ("select e'it\\'s'';' as x; select 2", [("select e'it\\'s'';' as x", 1), ("select 2", 1)]),
    "E string ending in a backslash": ("select E'\\\\'; select 2", [("select E'\\\\'", 1), ("select 2", 1)]),
    "E string continued on the next line": (
        "select E'a\\'b'\n  'c;d' as x; select 2", [("select E'a\\'b'\n  'c;d' as x", 1), ("select 2", 2)]),
    "E string continued after a comment line": (
        "select E'a'\n-- ;\n'\\';' as x; select 2", [("select E'a'\n-- ;\n'\\';' as x", 1), ("select 2", 3)]),
    "E glued to an identifier is not an E string": (
        "select 'a' as be'\\'; select 2", [("select 'a' as be'\\'", 1), ("select 2", 1)]),
    "double-quoted identifier": (
        'create table "we;ird ""t""" (x int); select 1 as "a;b"',
        [('create table "we;ird ""t""" (x int)', 1), ('select 1 as "a;b"', 1)]),
    "no backslash escape in identifiers": ('select 1 as "a\\"; select 2', [('select 1 as "a\\"', 1), ("select 2", 1)]),
    "dollar quote": ("select $$a;b$$; select 2", [("select $$a;b$$", 1), ("select 2", 1)]),
    "tagged dollar quote": (
        "do $body$ begin perform 1; end; $body$;\nselect 2",
        [("do $body$ begin perform 1; end; $body$", 1), ("select 2", 2)]),
    "nested dollar tags": (
        "select $a$ $b$ ; $b$ ; $a$; select 2", [("select $a$ $b$ ; $b$ ; $a$", 1), ("select 2", 1)]),
    "other tag does not close": ("select $a$ x $b$ ; $a$ ;select 2", [("select $a$ x $b$ ; $a$", 1), ("select 2", 1)]),
    "dollar quote holding quotes and comments": (
        "select $$ ' \" -- /* $$; select 2", [("select $$ ' \" -- /* $$", 1), ("select 2", 1)]),
    "unicode dollar tag": ("select $é$ ; $é$; select 2", [("select $é$ ; $é$", 1), ("select 2", 1)]),
    "positional parameter": ("prepare p(int) as select $1; select 2", [("prepare p(int) as select $1", 1), ("select 2", 1)]),
    "parameter then space": ("select $1 ; select 2", [("select $1", 1), ("select 2", 1)]),
    "parameter glued to a dollar opens a quote": ("select $1$ ; $1$; select 2", [("select $1$ ; $1$", 1), ("select 2", 1)]),
    "dollar inside an identifier": (
        "select a$b$ from t$1; select 2", [("select a$b$ from t$1", 1), ("select 2", 1)]),
    "block comment": ("select /* ; */ 1; select 2", [("select /* ; */ 1", 1), ("select 2", 1)]),
    "nested block comment": (
        "/* outer /* inner ; ' */ still ; \" */ select 1; select 2",
        [("/* outer /* inner ; ' */ still ; \" */ select 1", 1), ("select 2", 1)]),
    "slash star slash": ("/*/ ; */ select 1; select 2", [("/*/ ; */ select 1", 1), ("select 2", 1)]),
    "star slash star": ("/* /* */* ; */ select 1; select 2", [("/* /* */* ; */ select 1", 1), ("select 2", 1)]),
    "division is not a comment": ("select 4/2; select 2", [("select 4/2", 1), ("select 2", 1)]),
    "minus is not a comment": ("select 4-2; select -1", [("select 4-2", 1), ("select -1", 1)]),
    "unclosed block comment runs to the end": ("select 1 /* ; select 2", [("select 1 /* ; select 2", 1)]),
    "unclosed quote runs to the end, trailing semicolon trimmed": ("select 'a; b;", [("select 'a; b", 1)]),
    "BEGIN ATOMIC body": (
        "create function f() returns int language sql\nbegin atomic\n  select 1;\n  select 2;\nend;\nselect 3",
        [("create function f() returns int language sql\nbegin atomic\n  select 1;\n  select 2;\nend", 1),
         ("select 3", 6)]),
    "BEGIN ATOMIC with CASE ... END inside": (
        "create function f(x int) returns text language sql begin atomic select case when x > 0 then 'p' else 'n' end; end; select 2",
        [("create function f(x int) returns text language sql begin atomic select case when x > 0 then 'p' else 'n' end; end", 1),
         ("select 2", 1)]),
    "BEGIN and ATOMIC on two lines, any case": (
        "create procedure p() language sql BEGIN\n\tAtomic insert into t values (1); END; select 2",
        [("create procedure p() language sql BEGIN\n\tAtomic insert into t values (1); END", 1), ("select 2", 2)]),
    "END must start a statement of the body": (
        "create function f() returns int language sql begin atomic select 1 as spend; select 2 as ends; end; select 3",
        [("create function f() returns int language sql begin atomic select 1 as spend; select 2 as ends; end", 1),
         ("select 3", 1)]),
    "END after a comment in the body": (
        "create function f() returns int language sql begin atomic select 1; -- done;\n end; select 3",
        [("create function f() returns int language sql begin atomic select 1; -- done;\n end", 1), ("select 3", 2)]),
    "END followed by an identifier character does not end the body": (
        "create function f() returns int language sql begin atomic select 1; end_x; end; select 3",
        [("create function f() returns int language sql begin atomic select 1; end_x; end", 1), ("select 3", 1)]),
    "atomic as a word is not BEGIN ATOMIC": (
        "select 1 as nonatomic; select 2 as atomic; select 3",
        [("select 1 as nonatomic", 1), ("select 2 as atomic", 1), ("select 3", 1)]),
    "BEGIN then a comment then ATOMIC is not BEGIN ATOMIC": (
        "begin /* x */ atomic; select 2", [("begin /* x */ atomic", 1), ("select 2", 1)]),
    "parentheses hold semicolons": (
        "create rule r as on insert to t do also (insert into l select 1; insert into l select 2); select 3",
        [("create rule r as on insert to t do also (insert into l select 1; insert into l select 2)", 1), ("select 3", 1)]),
    "nested parentheses: the first ) closes them all": (
        "select ((1); 2); select 3", [("select ((1)", 1), ("2)", 1), ("select 3", 1)]),
    "quote inside parentheses": ("select (';'); select 2", [("select (';')", 1), ("select 2", 1)]),
    "backslash outside quotes escapes one character": (
        "select 1 \\; select 2; select 3", [("select 1 \\; select 2", 1), ("select 3", 1)]),
    "CRLF line endings": (
        "select 1;\r\n-- two\r\nselect 2;\r\n\r\nselect 3\r\n",
        [("select 1", 1), ("-- two\r\nselect 2", 2), ("select 3", 5)]),
    "line comment ends at a lone CR": (
        "select 1; -- c\rselect 2; select 3", [("select 1", 1), ("-- c\rselect 2", 1), ("select 3", 2)]),
    "lone CR counts as a line break": ("select 1;\rselect 2;\r\rselect 3", [("select 1", 1), ("select 2", 2), ("select 3", 4)]),
    "UTF-8 BOM is dropped": ("\ufeffselect 1;\nselect 2", [("select 1", 1), ("select 2", 2)]),
    "BOM then dollar quote": ("\ufeff$$ ; $$", [("$$ ; $$", 1)]),
    "JavaScript trim: NBSP and U+2028 go, U+0085 stays": (
        "\u00a0select 1\u2028;select 2 as a\u0085;", [("select 1", 1), ("select 2 as a\u0085", 1)]),
    "JavaScript trim: \\x1c stays": ("select 1\x1c;", [("select 1\x1c", 1)]),
    "non-ASCII text": ("select 'é😀;' as \"ü;\"; select 2", [("select 'é😀;' as \"ü;\"", 1), ("select 2", 1)]),
    "pg-delta header is part of the first statement": (
        "-- pg-delta: transaction=false\r\nselect 1;\nselect 2;",
        [("-- pg-delta: transaction=false\r\nselect 1", 1), ("select 2", 3)]),
}


@pytest.mark.parametrize("sql, expected", list(SPLIT.values()), ids=list(SPLIT))
def test_split_statements(sql, expected):
    assert split_statements(sql) == [Statement(text, line) for text, line in expected]


def test_split_statements_of_an_empty_file_is_an_empty_list():
    assert split_statements("") == []


def test_decode_migration_like_the_cli():
    assert decode_migration(b"\xef\xbb\xbfselect 1") == "select 1"
    assert decode_migration(b"select '\xff\xfe'") == "select '\ufffd\ufffd'"
    assert decode_migration("select 'é'".encode("utf-8")) == "select 'é'"


# ---------------------------------------------------------------- classification

COMMENT_ONLY = {
    "": True,
    "-- a comment": True,
    "-- one\n-- two": True,
    "/* block */": True,
    "/* nested /* block */ still */ -- and a line": True,
    "-- comment\r\n/* x */\t": True,
    "/* unclosed": True,
    "select 1": False,
    "-- comment\nselect 1": False,
    "/* c */ select 1": False,
    "/* a */ */": False,
    "-": False,
}


@pytest.mark.parametrize("text, expected", list(COMMENT_ONLY.items()), ids=[repr(text) for text in COMMENT_ONLY])
def test_is_comment_only(text, expected):
    assert is_comment_only(text) is expected


# statement: (the CLI runs it alone, the engine must run it alone)
OWN_TRANSACTION = {
    "create index concurrently i on t (x)": (True, True),
    "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS i ON t (x)": (True, True),
    "create\n  index\tconcurrently i on t(x)": (True, True),
    "-- why\n/* how */ create index concurrently i on t (x)": (True, True),
    "drop index concurrently i": (True, True),
    "DROP INDEX CONCURRENTLY IF EXISTS i": (True, True),
    "reindex table concurrently t": (True, True),
    "reindex (verbose) index concurrently i": (True, True),
    "reindex (concurrently) table t": (False, True),
    "reindex table\nconcurrently t": (True, True),
    "reindex table\n  concurrently t": (False, True),
    "reindex table t": (False, False),
    "vacuum": (True, True),
    "vacuum analyze t": (True, True),
    "VACUUM(FULL) t": (True, True),
    "alter system set work_mem = '8MB'": (True, True),
    "cluster t using i": (True, True),
    "cluster": (True, True),
    "create database d": (False, True),
    'create database"d"': (False, True),
    "drop database if exists d": (False, True),
    "drop database d with (force)": (False, True),
    "create tablespace ts location '/x'": (False, True),
    "drop tablespace if exists ts": (False, True),
    "reindex database d": (False, True),
    "reindex (verbose) system d": (False, True),
    "alter database d\n  set tablespace ts": (False, True),
    "discard all": (False, True),
    "discard plans": (False, False),
    "create index i on t (x)": (False, False),
    "create index concurrently_named on t (x)": (False, False),
    "drop index i": (False, False),
    "vacuumed": (False, False),
    "clustered": (False, False),
    "analyze t": (False, False),
    "alter type mood add value 'b'": (False, False),
    "alter database d set work_mem = '8MB'": (False, False),
    "create database_things (x int)": (False, False),
    "select 'create index concurrently'": (False, False),
    "-- create index concurrently i on t (x)\nselect 1": (False, False),
    "": (False, False),
}


@pytest.mark.parametrize("text, expected", list(OWN_TRANSACTION.items()), ids=[repr(text) for text in OWN_TRANSACTION])
def test_runs_alone(text, expected):
    assert (cli_runs_alone(text), needs_own_transaction(text)) == expected


TRANSACTION_CONTROL = {
    "begin": True,
    "BEGIN ISOLATION LEVEL SERIALIZABLE": True,
    "begin transaction": True,
    "begin work": True,
    "start transaction": True,
    "START\nTRANSACTION READ ONLY": True,
    "commit": True,
    "commit and chain": True,
    "end": True,
    "end transaction": True,
    "abort": True,
    "rollback": True,
    "rollback work": True,
    "rollback transaction": True,
    "rollback prepared 'x'": True,
    "prepare transaction 'x'": True,
    "-- close it\ncommit": True,
    "rollback to savepoint s": False,
    "rollback to s": False,
    "rollback work to s": False,
    "rollback transaction to savepoint s": False,
    "savepoint s": False,
    "release savepoint s": False,
    "create function f() returns int language sql begin atomic select 1; end": False,
    "do $$ begin perform 1; end $$": False,
    "beginning": False,
    "select 1 -- commit": False,
    "prepare p as select 1": False,
    "": False,
}


@pytest.mark.parametrize("text, expected", list(TRANSACTION_CONTROL.items()), ids=[repr(text) for text in TRANSACTION_CONTROL])
def test_is_transaction_control(text, expected):
    assert is_transaction_control(text) is expected


def test_has_transaction_control():
    assert has_transaction_control(["create table t (x int)", "begin", "select 1", "commit"])
    assert has_transaction_control(split_statements("select 1;\nSTART TRANSACTION;\nselect 2;\nEND;"))
    assert not has_transaction_control(split_statements(
        "create function f() returns int language sql begin atomic select 1; end;\nselect 2;"))
    assert not has_transaction_control([])


TRANSACTION_MODE = {
    "": "transactional",
    "select 1": "transactional",
    "-- pg-delta: transaction=false\nselect 1": "none",
    "-- pg-delta: transaction=false\r\nselect 1": "none",
    "\ufeff-- pg-delta: transaction=false": "none",
    "-- pg-delta: transaction=false ": "transactional",
    "--  pg-delta: transaction=false": "transactional",
    "-- PG-DELTA: transaction=false": "transactional",
    "\n-- pg-delta: transaction=false": "transactional",
}


@pytest.mark.parametrize("sql, expected", list(TRANSACTION_MODE.items()), ids=[repr(sql) for sql in TRANSACTION_MODE])
def test_transaction_mode(sql, expected):
    assert transaction_mode(sql) == expected


# ---------------------------------------------------------------- properties

IDENTIFIER = st.from_regex(r"\A[a-z_][a-z0-9_]{0,8}\Z").filter(lambda word: word not in ("atomic", "end"))
SAFE_TEXT = st.text(alphabet=st.sampled_from(list("abc xyz;\n'\"$-/*()é\\")), max_size=20)
PART_KINDS = ["identifier", "quoted", "E quoted", "quoted identifier", "dollar", "parameter", "line comment", "block comment",
              "parentheses", "atomic body"]


def _dollar_quote(body, tag):
    delimiter = "$%s$" % tag
    # The CLI closes at the first later place where the text so far ends with the delimiter.
    assume((delimiter + body + delimiter).find(delimiter, 1) == len(delimiter) + len(body))
    return delimiter + body + delimiter


def _part(draw, kind):
    text = draw(SAFE_TEXT)
    if kind == "identifier":
        return draw(IDENTIFIER)
    if kind == "quoted":
        return "'" + text.replace("'", "''") + "'"
    if kind == "E quoted":
        first, _sep, rest = text.replace("\\", "\\\\").replace("'", "\\'").partition("\n")
        return "E'%s'" % first + ("\n  '%s'" % rest.replace("\n", " ") if rest else "")
    if kind == "quoted identifier":
        return '"' + text.replace('"', '""') + '"'
    if kind == "dollar":
        return _dollar_quote(text, draw(st.sampled_from(["", "body", "x1"])))
    if kind == "parameter":
        return "$%d" % draw(st.integers(1, 12))
    if kind == "line comment":
        return "-- " + text.replace("\n", " ") + ";\n"
    if kind == "block comment":
        assume("/*" not in text and "*/" not in text)
        return "/* " + text + " */"
    inner = [draw(IDENTIFIER), "'" + text.replace("'", "''") + "'", draw(IDENTIFIER)]
    if kind == "parentheses":
        return "(%s; %s, %s)" % tuple(inner)
    return "begin atomic select %s; select %s; %s; end" % tuple(inner)


@st.composite
def statements(draw):
    """A statement made of identifiers, strings, dollar quotes, comments, parentheses and BEGIN ATOMIC bodies holding ; and newlines."""
    parts = [draw(st.sampled_from(["select", "create table", "insert into", "comment on"]))]
    for kind in draw(st.lists(st.sampled_from(PART_KINDS), max_size=4)):
        parts.append(_part(draw, kind))
    statement = " ".join(parts)
    assume(not statement.endswith("\n"))  # a trailing line break would be trimmed
    return statement


SEPARATORS = [";\n", ";\r\n", "; ", ";;\n;", ";\n\n-- next;\n"]


@given(st.lists(statements(), max_size=6), st.sampled_from(SEPARATORS))
def test_joined_statements_split_back(items, separator):
    sql = ""
    expected = []
    for position, item in enumerate(items):
        if position:
            sql += separator
        begin = len(sql)
        if position and separator.endswith("-- next;\n"):
            begin -= len("-- next;\n")  # a comment before a statement belongs to it
        sql += item
        expected.append(Statement(sql[begin:], sql.count("\n", 0, begin) + 1))
    assert split_statements(sql) == expected


@given(st.lists(statements(), min_size=1, max_size=5), st.sampled_from([";", ";\n", " ;\r\n", ";;\n"]))
def test_split_of_a_file_is_the_splits_of_its_statements(items, terminator):
    chunks = [item + terminator for item in items]
    expected = []
    lines_before = 0
    for chunk in chunks:
        expected.extend(Statement(piece.text, piece.line + lines_before) for piece in split_statements(chunk))
        lines_before += chunk.count("\n")
    assert split_statements("".join(chunks)) == expected


@given(st.lists(statements(), max_size=5))
def test_statements_split_to_themselves(items):
    texts = [statement.text for statement in split_statements(";\n".join(items))]
    assert [piece.text for text in texts for piece in split_statements(text)] == texts


@given(st.lists(statements(), min_size=1, max_size=5))
def test_lines_point_at_each_statement(items):
    sql = "\n\n".join(item + ";" for item in items)
    lines = sql.split("\n")
    for statement in split_statements(sql):
        assert "\n".join(lines[statement.line - 1:]).startswith(statement.text)


# Where a stored statement does not split back to itself, in the CLI as here.
NOT_IDEMPOTENT = {
    # trailing ; are removed before the blanks: "(; " is stored as "(;", which splits to "("
    "semicolon before trailing blanks": ("(; ", ["(;"], ["("]),
    # the ; ending a comment on the last line stays, and is trimmed when split again
    "comment ending in a semicolon": ("select 1 -- a;\n;", ["select 1 -- a;"], ["select 1 -- a"]),
    # a NBSP before $ hides the dollar quote in the file, and is trimmed from the stored text
    "NBSP before a dollar": ("\u00a0$$ ' $$ ; ' ;", ["$$ ' $$ ; '"], ["$$ ' $$", "'"]),
}


@pytest.mark.parametrize("sql, stored, split_again", list(NOT_IDEMPOTENT.values()), ids=list(NOT_IDEMPOTENT))
def test_cli_quirks_that_do_not_split_back(sql, stored, split_again):
    assert [statement.text for statement in split_statements(sql)] == stored
    assert [piece.text for text in stored for piece in split_statements(text)] == split_again


@settings(max_examples=300)
@given(st.text())
@example("$")
@example("'")
@example("begin atomic")
@example("/*")
@example("E'\\")
def test_never_raises(sql):
    for statement in split_statements(sql):
        assert statement.text and statement.text == statement.text.strip(" \t\n\r")
        assert 1 <= statement.line <= sql.count("\n") + sql.count("\r") + 1
        needs_own_transaction(statement.text)
        is_transaction_control(statement.text)
        is_comment_only(statement.text)


@settings(max_examples=300)
@given(st.text(alphabet=st.sampled_from(list("ab EeATOMICNDBGcnd$1_'\"\\-/*;()\n\r\t")), max_size=80))
def test_statements_come_from_the_file_in_order(sql):
    position = 0
    for statement in split_statements(sql):
        assert statement.text in sql[position:]
        position = sql.index(statement.text, position) + len(statement.text)
        assert statement.line == 1 + len(re.findall(r"\r\n|\r|\n", sql[:position - len(statement.text)]))


def _tokens_one_character_at_a_time(text):
    """The tokenizer with no skipping: every character goes through its state's next()."""
    state, start = migrations.READY, 0
    for index, char in enumerate(text):
        state = state.next(char, text, start, index + 1)
        if state is None:
            yield start, index + 1
            start, state = index + 1, migrations.READY
    if start < len(text):
        yield start, len(text)


TOKEN_PIECES = ["$", "$$", "$a$", "$fn$", "a$", "$1", "'", "''", '"', "E'", "e'\\'", "\\", "-", "--", "/", "/*", "*/", "*",
                ";", "(", "((", ")", "c", "C", "BEGIN", " ATOMIC", "atomiC", "xatomic", "END", "end;", " ", "\n", "\r", "\t",
                "x", "é", "\u00a0", "E", "SELECT 1", "begin atomic"]


@settings(max_examples=500)
@given(st.lists(st.sampled_from(TOKEN_PIECES), max_size=40).map("".join))
@example("$a$ x $a $a$;")
@example("$$$x$$;")
@example("(E'it\\'s; (' ; ');")
@example("create function f() begin atomic select 1; end; x")
def test_skipping_ahead_splits_like_reading_every_character(sql):
    assert list(migrations._tokens(sql)) == list(_tokens_one_character_at_a_time(sql))
