"""Environment files: KEY=VALUE lines, as systemd's EnvironmentFile= reads them.

Values are written bare when they only hold safe characters, else in double
quotes with backslash escapes, so systemd, the launcher and a shell `.` all
read back the same value.
"""

import os
import re
import tempfile

NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
BARE_VALUE = re.compile(r"^[A-Za-z0-9_./:@%+=,-]*$")


class EnvFileError(ValueError):
    """A malformed line, named by file and line number (never its value: it may be a secret)."""


def quote(value):
    value = str(value)
    if BARE_VALUE.match(value):
        return value
    return '"%s"' % value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$").replace("`", "\\`")


def unquote(value):
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    if len(value) >= 2 and value[0] == value[-1] == "'":
        return value[1:-1]
    return value


def format_env(values):
    """The text of an env file holding `values` (a mapping), one KEY=VALUE per line."""
    lines = []
    for name, value in values.items():
        if not NAME.match(name):
            raise EnvFileError("bad variable name %r" % name)
        lines.append("%s=%s" % (name, quote(value)))
    return "\n".join(lines) + "\n"


def parse_env(text, origin="env file"):
    """{name: value} from env file text; blank lines and # comments are skipped."""
    values = {}
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export "):
            line = line[len("export "):].lstrip()
        name, sep, value = line.partition("=")
        name = name.strip()
        if not sep or not NAME.match(name):
            raise EnvFileError("%s line %d: expected NAME=VALUE" % (origin, number))
        values[name] = unquote(value.strip())
    return values


def read_env_file(path):
    with open(path, encoding="utf-8") as handle:
        return parse_env(handle.read(), origin=str(path))


def write_env_file(path, values, mode=0o600):
    """Write atomically (temp file + rename) with `mode` from the start, so a
    secret is never readable by others, not even for a moment."""
    directory = os.path.dirname(os.path.abspath(path))
    fd, temp = tempfile.mkstemp(prefix=".env-", dir=directory)
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(format_env(values))
        os.replace(temp, path)
    except BaseException:
        if os.path.exists(temp):
            os.unlink(temp)
        raise
