# -*- coding: utf-8 -*-
# Copyright: slogate.supabase contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Migration files as the Supabase CLI 3.1.0 sees them: pure logic, no driver, no Ansible.

Everything here reproduces what ``supabase db push`` (CLI 3.1.0, the
TypeScript/Bun build) does with ``supabase/migrations``, so that a database
pushed by slogate is indistinguishable from one pushed by the CLI:

- which files count, in which order, and which are skipped (``discover``);
- how a file is cut into the statements stored in
  ``supabase_migrations.schema_migrations.statements`` (``split_statements``);
  the stored array must be byte-identical to the CLI's;
- how a file is run: ``transaction_mode``, ``needs_own_transaction``,
  ``has_transaction_control``.

CLI 3.1.0 is not the Go CLI: its splitter differs from the Go
``pkg/parser`` (it knows E'...' strings, ignores ``$`` after an identifier
character, ends a BEGIN ATOMIC body only at an ``END`` that starts one of
its statements, does not reopen a comment on ``*/*``), and it orders files
by version rather than by name. The splitter here is a character state
machine that gives the same cuts as 3.1.0's, its quirks included, because
the stored array is compared byte for byte: a ``)`` closes every open
parenthesis at once; ``$1$`` opens a dollar quote; trailing ``;`` are
removed before the blanks, so ``(; `` is stored as ``(;``.
tests/integration/test_migrations_cli_parity.py checks it against the real CLI.

Read a file with ``decode_migration(bytes)``, not in Python's text mode:
text mode turns CRLF and CR into LF, and the CLI keeps them in what it stores.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import bisect
import re
from dataclasses import dataclass
from typing import Iterable, List, Optional, Tuple

# ---------------------------------------------------------------- file names

# The CLI's rule, in JavaScript: /^([0-9]+)_(.*)\.sql$/ where "." is any
# character but a line terminator and "$" is the end of the name.
MIGRATION_FILENAME = re.compile("^([0-9]+)_([^\n\r\u2028\u2029]*)\\.sql\\Z")

# Legacy: when the first entry of the folder (sorted by name) contains
# <14 digits>_init.sql with a timestamp before 2021-12-09, it is skipped.
LEGACY_INIT_FILENAME = re.compile(r"([0-9]{14})_init\.sql")
LEGACY_INIT_BEFORE = 20211209000000

# The CLI's own words, as printed after "Skipping migration <file>... ".
SKIP_LEGACY_INIT = 'replace "init" with a different file name to apply this migration'
SKIP_BAD_NAME = 'file name must match pattern "<timestamp>_name.sql"'


@dataclass(frozen=True)
class MigrationFile:
    """One migration file the CLI would apply: ``<version>_<name>.sql``."""

    version: str
    name: str
    filename: str


def parse_filename(filename):
    # type: (str) -> Optional[Tuple[str, str]]
    """(version, name) of a migration file name by the CLI's rule, or None.

    The version is the leading digits, compared as text; the name is the
    rest up to the final ``.sql`` (lower case), and may be empty.
    """
    match = MIGRATION_FILENAME.match(filename)
    return (match.group(1), match.group(2)) if match else None


def _name_bytes(name):
    return name.encode("utf-8", "surrogateescape")


def _is_legacy_init(filename):
    match = LEGACY_INIT_FILENAME.search(filename)
    return bool(match) and int(match.group(1)) < LEGACY_INIT_BEFORE


def discover(filenames, directories=()):
    # type: (Iterable[str], Iterable[str]) -> Tuple[List[MigrationFile], List[Tuple[str, str]]]
    """The migration files of one folder in the order the CLI applies them, and the skipped ones.

    ``filenames``: the names of the entries directly in ``supabase/migrations``
    that are not folders. ``directories``: the names of its sub-folders; the
    CLI ignores them silently, but they take part in the sort that decides
    which entry is "first" for the legacy init rule.

    Returns ``(files, skipped)``: ``files`` sorted by version (as text; files
    with the same version keep their name order), ``skipped`` as
    ``(filename, reason)`` in name order, with the CLI's reason text.
    """
    entries = [(name, False) for name in filenames] + [(name, True) for name in directories]
    entries.sort(key=lambda entry: _name_bytes(entry[0]))
    files = []
    skipped = []
    for index, (filename, is_directory) in enumerate(entries):
        if is_directory:
            continue
        if index == 0 and _is_legacy_init(filename):
            skipped.append((filename, SKIP_LEGACY_INIT))
            continue
        parsed = parse_filename(filename)
        if parsed is None:
            skipped.append((filename, SKIP_BAD_NAME))
            continue
        files.append(MigrationFile(version=parsed[0], name=parsed[1], filename=filename))
    files.sort(key=lambda item: item.version)  # stable: equal versions stay in name order
    return files, skipped


# ---------------------------------------------------------------- reading

# What the CLI takes for white space where it trims a statement (JavaScript's
# String.prototype.trim: Unicode space separators, line terminators, BOM).
TRIM_SPACE = "\t\n\v\f\r \u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a" \
             "\u2028\u2029\u202f\u205f\u3000\ufeff"
# What its tokenizer takes for white space (between BEGIN and ATOMIC, around END ...).
_BLANK = " \t\n\r\f\v"
_NEWLINE = "\n\r"
_IDENT_ASCII = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_$")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")
_TRAILING_SEMICOLONS = re.compile(r";+\Z")
_BOM = "\ufeff"

# A first line that makes the CLI run every statement of the file on its own, outside any transaction.
NO_TRANSACTION_HEADER = "-- pg-delta: transaction=false"


def decode_migration(data):
    # type: (bytes) -> str
    """The text of a migration file as the CLI reads it: UTF-8, invalid bytes as U+FFFD, a leading BOM dropped."""
    text = data.decode("utf-8", "replace")
    return text[1:] if text.startswith(_BOM) else text


def transaction_mode(sql):
    # type: (str) -> str
    """``"none"`` when the file's first line is exactly ``-- pg-delta: transaction=false``, else ``"transactional"``.

    In ``none`` mode the CLI sends each statement on its own (autocommit) and
    then inserts the history row, also on its own.
    """
    text = sql[1:] if sql.startswith(_BOM) else sql
    first = text.split("\n", 1)[0]
    if first.endswith("\r"):
        first = first[:-1]
    return "none" if first == NO_TRANSACTION_HEADER else "transactional"


# ---------------------------------------------------------------- splitting


def _is_ident_char(char):
    return char in _IDENT_ASCII or ord(char) >= 128


def _ident_before(text, start, index):
    """Whether the character before ``index`` (inside the current token) belongs to an identifier."""
    return index > start and _is_ident_char(text[index - 1])


def _ends_with_word(text, start, end, word):
    """Whether the token text[start:end] ends with the keyword ``word`` (ASCII, any case) not glued to an identifier."""
    begin = end - len(word)
    if begin < start:
        return False
    tail = text[begin:end]
    if not tail.isascii() or tail.upper() != word:
        return False
    return not _ident_before(text, start, begin)


def _skip_blank(text, is_blank):
    """Index of the first character of ``text`` that is neither blank nor inside a comment (len(text) if none).

    ``--`` comments end at CR or LF; ``/* */`` comments nest; an unclosed one runs to the end.
    """
    index = 0
    length = len(text)
    while index < length:
        if is_blank(text[index]):
            index += 1
        elif text.startswith("--", index):
            ends = [position for position in (text.find("\n", index + 2), text.find("\r", index + 2)) if position >= 0]
            if not ends:
                return length
            index = min(ends) + 1
        elif text.startswith("/*", index):
            depth = 1
            after_delimiter = True
            index += 2
            while index < length and depth > 0:
                step = 0 if after_delimiter else _comment_step(text[index - 1:index + 1])
                after_delimiter = step != 0
                depth += step
                index += 1
            if depth > 0:
                return length
        else:
            return index
    return length


def _comment_step(window):
    if window == "/*":
        return 1
    if window == "*/":
        return -1
    return 0


def _is_tokenizer_blank(char):
    return char in _BLANK


def _is_lead_blank(char):
    return char in _BLANK or char == _BOM


def _begins_atomic(text, start, end):
    """Whether the token text[start:end] ends with ``BEGIN <blanks> ATOMIC``."""
    if not _ends_with_word(text, start, end, "ATOMIC"):
        return False
    index = end - len("ATOMIC")
    while index > start and text[index - 1] in _BLANK:
        index -= 1
    return _ends_with_word(text, start, index, "BEGIN")


class _State:
    """A tokenizer state.

    ``next(char, text, start, end)`` is the state after ``char``, where text[start:end] is the current token up to
    and including ``char``; None ends the token (a ``;`` outside quotes, comments and bodies).

    ``skip(text, start, index)`` is the index of the first character from ``index`` on that may change the state
    (-1: none before the end). Every character it passes over would leave the state as it is: jumping over them
    with one search instead of a call per character makes splitting several times faster.
    """

    __slots__ = ()

    def skip(self, text, start, index):
        return index if index < len(text) else -1


def _found(match):
    return match.start() if match else -1


class _Ready(_State):
    __slots__ = ()

    def skip(self, text, start, index):
        return _found(_READY_SPECIAL_RE.search(text, index))

    def next(self, char, text, start, end):
        if char == "$":
            if _ident_before(text, start, end - 1):
                return self
            return _Tag(end - 1)
        if char == "'":
            return _Quote("'", _ends_with_word(text, start, end - 1, "E"))
        if char == '"':
            return _Quote('"', False)
        if char == "-":
            return _Dash()
        if char == "/":
            return _Slash()
        if char == "\\":
            return _Escape()
        if char == ";":
            return None
        if char == "(":
            return _Parenthesis(READY)
        if char in ("c", "C") and _begins_atomic(text, start, end):
            return _Atomic(READY, end)
        return self


READY = _Ready()


class _Dash(_State):
    """After one ``-``: a second one opens a line comment."""

    __slots__ = ()

    def next(self, char, text, start, end):
        if char == "-":
            return _LineComment()
        return READY.next(char, text, start, end)


class _LineComment(_State):
    __slots__ = ()

    def skip(self, text, start, index):
        return _found(_NEWLINE_RE.search(text, index))

    def next(self, char, text, start, end):
        return READY if char in _NEWLINE else self


class _Slash(_State):
    """After ``/``: ``/*`` opens a block comment; nested ones count."""

    __slots__ = ("depth", "after_delimiter")

    def __init__(self):
        self.depth = 0
        self.after_delimiter = False

    def next(self, char, text, start, end):
        step = 0 if self.after_delimiter else _comment_step(text[max(start, end - 2):end])
        self.after_delimiter = step != 0
        if self.depth == 0 and step == 0:
            return READY.next(char, text, start, end)
        self.depth += step
        return READY if self.depth == 0 else self


class _Quote(_State):
    """Inside '...' (doubled quotes; backslash escapes for E'...') or "..."."""

    __slots__ = ("delimiter", "backslash_escapes", "closed", "backslash")

    def __init__(self, delimiter, backslash_escapes):
        self.delimiter = delimiter
        self.backslash_escapes = backslash_escapes
        self.closed = False
        self.backslash = False

    def skip(self, text, start, index):
        if self.closed or self.backslash or self.backslash_escapes:
            return _State.skip(self, text, start, index)
        return text.find(self.delimiter, index)

    def next(self, char, text, start, end):
        if self.closed:
            if char == self.delimiter:
                self.closed = False
                return self
            if self.backslash_escapes:
                return _AfterEscapeString().next(char, text, start, end)
            return READY.next(char, text, start, end)
        if self.backslash:
            self.backslash = False
            return self
        if self.backslash_escapes and char == "\\":
            self.backslash = True
            return self
        if char == self.delimiter:
            self.closed = True
        return self


class _AfterEscapeString(_State):
    """After E'...': blanks holding a line break, then ' continue the same string."""

    __slots__ = ("newline", "dashes")

    def __init__(self):
        self.newline = False
        self.dashes = 0

    def next(self, char, text, start, end):
        if self.dashes == 2:
            if char in _NEWLINE:
                self.dashes = 0
                self.newline = True
            return self
        if char == "-":
            self.dashes += 1
            return self
        if self.dashes == 0:
            if char in _BLANK:
                self.newline = self.newline or char in _NEWLINE
                return self
            if self.newline and char == "'":
                return _Quote("'", True)
        return READY.next(char, text, start, end)


class _Tag(_State):
    """After a ``$`` that may open a dollar quote: ``$tag$``."""

    __slots__ = ("offset",)

    def __init__(self, offset):
        self.offset = offset

    def next(self, char, text, start, end):
        if char == "$":
            return _DollarQuote(text[self.offset:end])
        if _is_ident_char(char):
            return self
        return READY.next(char, text, start, end)


class _DollarQuote(_State):
    __slots__ = ("delimiter",)

    def __init__(self, delimiter):
        self.delimiter = delimiter

    def skip(self, text, start, index):
        # The last character of the first delimiter that ends after ``index`` (next() closes there).
        found = text.find(self.delimiter, max(start, index + 1 - len(self.delimiter)))
        return found + len(self.delimiter) - 1 if found >= 0 else -1

    def next(self, char, text, start, end):
        if text[max(start, end - len(self.delimiter)):end] == self.delimiter:
            return READY
        return self


class _Escape(_State):
    """After a backslash outside quotes: the next character is taken as is."""

    __slots__ = ()

    def next(self, char, text, start, end):
        return READY


class _Parenthesis(_State):
    """Inside (...): a ``;`` does not end the statement; the first ``)`` met in the ready state closes."""

    __slots__ = ("inner",)

    def __init__(self, inner):
        self.inner = inner

    def skip(self, text, start, index):
        if self.inner is READY:
            return _found(_PARENTHESIS_SPECIAL_RE.search(text, index))
        return self.inner.skip(text, start, index)

    def next(self, char, text, start, end):
        state = self.inner.next(char, text, start, end)
        if state is None:
            self.inner = READY
            return self
        self.inner = state
        if not isinstance(state, _Ready):
            return self
        return READY if char == ")" else self


class _Atomic(_State):
    """Inside a BEGIN ATOMIC body: it ends at an ``END`` that starts one of its statements."""

    __slots__ = ("inner", "pending_end", "statement_start", "statement_has_content")

    def __init__(self, inner, statement_start):
        self.inner = inner
        self.pending_end = False
        self.statement_start = statement_start
        self.statement_has_content = False

    def next(self, char, text, start, end):
        pending = self.pending_end
        self.pending_end = False
        if pending and not _is_ident_char(char):
            return READY.next(char, text, start, end)
        state = self.inner.next(char, text, start, end)
        if state is None:
            self.inner = READY
            self.statement_start = end
            self.statement_has_content = False
            return self
        self.inner = state
        if not isinstance(state, _Ready):
            return self
        if not self.statement_has_content and _ends_with_word(text, start, end, "END"):
            before = text[self.statement_start:end - 3]
            if _skip_blank(before, _is_tokenizer_blank) == len(before):
                self.pending_end = True
            else:
                self.statement_has_content = True
        return self


def _tokens(text):
    """(start, end) of each raw token: up to and including its terminating ``;``, or to the end of the text."""
    state = READY
    start = 0
    index = 0
    while True:
        index = state.skip(text, start, index)
        if index < 0:
            break
        state = state.next(text[index], text, start, index + 1)
        index += 1
        if state is None:
            yield start, index
            start = index
            state = READY
    if start < len(text):
        yield start, len(text)


# The characters on which the ready state may change: a C only as the end of ATOMIC (see _begins_atomic).
_READY_SPECIAL = "[%s]|(?<=[aA][tT][oO][mM][iI])[cC]" % re.escape("$'\"-/\\;(")
_READY_SPECIAL_RE = re.compile(_READY_SPECIAL)
# In (...) with nothing open inside, also the closing parenthesis.
_PARENTHESIS_SPECIAL_RE = re.compile(_READY_SPECIAL + "|\\)")
_NEWLINE_RE = re.compile("[%s]" % _NEWLINE)


@dataclass(frozen=True)
class Statement:
    """One statement as the CLI stores it, and the 1-based line of the file where its text begins."""

    text: str
    line: int


def _trim_statement(token):
    return _TRAILING_SEMICOLONS.sub("", token).strip(TRIM_SPACE)


def split_statements(sql):
    # type: (str) -> List[Statement]
    """The statements of a migration file, exactly as the CLI stores them in ``statements``.

    Each is the text between two ``;`` that are outside quotes, dollar quotes,
    comments, parentheses and BEGIN ATOMIC bodies, with trailing ``;`` removed
    and then trimmed; its leading comments stay. Empty pieces are dropped,
    so an empty file gives ``[]``; a comments-only file gives the comment as
    one statement. A leading BOM is ignored (the CLI's reader drops it).
    ``sql`` must keep the file's line endings (see ``decode_migration``).
    ``line`` counts CRLF, LF and a lone CR as one line break each.
    """
    text = sql[1:] if sql.startswith(_BOM) else sql
    line_starts = None
    statements = []
    for start, end in _tokens(text):
        token = text[start:end]
        trimmed = _trim_statement(token)
        if not trimmed:
            continue
        if line_starts is None:
            line_starts = [0] + [match.end() for match in _LINE_BREAK.finditer(text)]
        first = start + len(token) - len(token.lstrip(TRIM_SPACE))
        statements.append(Statement(text=trimmed, line=bisect.bisect_right(line_starts, first)))
    return statements


# ---------------------------------------------------------------- running

_SPACE = "[\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]"
_END = "(?:%s|\\Z)" % _SPACE
# The CLI's list of statements it runs alone, on the upper-cased statement after its leading comments.
_CLI_RUNS_ALONE = re.compile("|".join((
    "CREATE{s}+(?:UNIQUE{s}+)?INDEX{s}+CONCURRENTLY{e}",
    "DROP{s}+INDEX{s}+CONCURRENTLY{e}",
    "REINDEX(?:{s}|\\()[^\n\r\u2028\u2029]*{s}CONCURRENTLY{e}",
    "VACUUM(?:{s}|\\(|\\Z)",
    "ALTER{s}+SYSTEM{e}",
    "CLUSTER{e}",
)).format(s=_SPACE, e=_END))
# Statements PostgreSQL (12+) always refuses inside a transaction block that are not on the CLI's list.
_NAME_END = '(?:%s|"|\\Z)' % _SPACE
_REFUSED_IN_TRANSACTION = re.compile("|".join((
    "(?:CREATE|DROP){s}+(?:DATABASE|TABLESPACE){n}",
    "ALTER{s}+DATABASE{s}.*{s}SET{s}+TABLESPACE{n}",
    "REINDEX{s}*(?:\\([^)]*\\){s}*)?(?:DATABASE|SYSTEM){n}",
    "REINDEX{s}*\\([^)]*CONCURRENTLY",
    "REINDEX(?:{s}|\\().*{s}CONCURRENTLY{e}",
    "DISCARD{s}+ALL{e}",
)).format(s=_SPACE, e=_END, n=_NAME_END), re.DOTALL)
_TRANSACTION_CONTROL = re.compile("(?:BEGIN|START{s}+TRANSACTION|COMMIT|END|ABORT|PREPARE{s}+TRANSACTION){e}".format(s=_SPACE, e=_END))
_WORDS = re.compile("%s+" % _SPACE)


def _lead(text):
    """The statement without its leading blanks and comments, upper-cased: what the CLI classifies."""
    return text[_skip_blank(text, _is_lead_blank):].strip(TRIM_SPACE).upper()


def is_comment_only(text):
    # type: (str) -> bool
    """Whether a statement holds nothing but blanks and comments.

    The CLI stores and sends such a statement (the server answers with an
    empty query); psycopg2 refuses to execute it, so the engine skips it.
    """
    return _skip_blank(text, _is_tokenizer_blank) == len(text)


def cli_runs_alone(text):
    # type: (str) -> bool
    """Whether the CLI itself takes this statement out of the file's transaction.

    Exactly the CLI's list, matched on the statement after its leading
    comments: CREATE [UNIQUE] INDEX CONCURRENTLY, DROP INDEX CONCURRENTLY,
    REINDEX ... CONCURRENTLY (with CONCURRENTLY on the first line, after a
    blank), VACUUM, ALTER SYSTEM, CLUSTER. The statements before it are
    committed first, it runs alone (autocommit), and the rest of the file
    with its history row forms the last transaction.
    """
    return _CLI_RUNS_ALONE.match(_lead(text)) is not None


def needs_own_transaction(text):
    # type: (str) -> bool
    """Whether the engine must run this statement alone, outside the file's transaction.

    The CLI's own list (``cli_runs_alone``), plus the statements PostgreSQL
    always refuses inside a transaction block that the CLI leaves in its
    batch: CREATE/DROP DATABASE, CREATE/DROP TABLESPACE, ALTER DATABASE ...
    SET TABLESPACE, REINDEX DATABASE/SYSTEM, DISCARD ALL, and REINDEX ...
    CONCURRENTLY where the CLI's pattern misses it (in the option list, or
    on a later line). The CLI sends a batch as one pipeline: PostgreSQL runs
    such a statement there only as the batch's first statement (it then
    commits at once) and refuses it anywhere else, so running it alone gives
    the CLI's result wherever the CLI succeeds. ALTER TYPE ... ADD VALUE is
    not here: PostgreSQL 12 and later run it inside a transaction.
    """
    lead = _lead(text)
    return _CLI_RUNS_ALONE.match(lead) is not None or _REFUSED_IN_TRANSACTION.match(lead) is not None


def is_transaction_control(text):
    # type: (str) -> bool
    """Whether a statement opens or ends a transaction: BEGIN, START TRANSACTION, COMMIT, END, ABORT,
    PREPARE TRANSACTION, ROLLBACK [WORK|TRANSACTION] (but not ROLLBACK ... TO a savepoint)."""
    lead = _lead(text)
    words = _WORDS.split(lead)
    if words[0] == "ROLLBACK":
        position = 2 if len(words) > 1 and words[1] in ("WORK", "TRANSACTION") else 1
        return position >= len(words) or words[position] != "TO"
    return _TRANSACTION_CONTROL.match(lead) is not None


def has_transaction_control(statements):
    # type: (Iterable[str]) -> bool
    """Whether a file manages its own transactions (BEGIN ATOMIC bodies do not count).

    The CLI then sends each statement on its own, in order: whatever is not
    inside the file's own BEGIN ... COMMIT autocommits, the history row is
    inserted last, and on an error it sends ROLLBACK.
    ``statements``: texts, or Statement objects.
    """
    return any(is_transaction_control(getattr(item, "text", item)) for item in statements)
