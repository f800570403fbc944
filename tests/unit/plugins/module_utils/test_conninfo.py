import pytest

from ansible_collections.slogate.supabase.plugins.module_utils.conninfo import (
    describe_connect_error,
    describe_malformed_url,
    describe_target,
    resolve_db_url,
    validate_duration,
)
from ansible_collections.slogate.supabase.plugins.module_utils.errors import ConfigurationError

URL = "postgresql://u:pw@h:1/d"


@pytest.mark.parametrize("option, environ, expected", [
    (URL, {"SUPABASE_DB_URL": "x", "DATABASE_URL": "y"}, (URL, "db_url")),
    (None, {"SUPABASE_DB_URL": "x", "DATABASE_URL": "y"}, ("x", "SUPABASE_DB_URL")),
    (None, {"DATABASE_URL": "y"}, ("y", "DATABASE_URL")),
    ("", {"SUPABASE_DB_URL": "", "DATABASE_URL": "y"}, ("y", "DATABASE_URL")),
], ids=["option wins", "supabase var before database var", "database var", "empty values skipped"])
def test_resolve_db_url(option, environ, expected):
    assert resolve_db_url(option, environ) == expected


def test_resolve_db_url_without_any_names_every_setting():
    with pytest.raises(ConfigurationError, match="db_url option or the SUPABASE_DB_URL or DATABASE_URL"):
        resolve_db_url(None, {})


@pytest.mark.parametrize("value, expected", [
    (None, None), ("", None), ("5000", "5000"), (5000, "5000"), ("30s", "30s"), ("1.5 min", "1.5min"), ("250ms", "250ms"),
])
def test_validate_duration_accepts(value, expected):
    assert validate_duration("lock_timeout", value) == expected


@pytest.mark.parametrize("value", ["5 seconds", "-1", "s", "1;drop table x", "1e3"])
def test_validate_duration_rejects_naming_the_option(value):
    with pytest.raises(ConfigurationError, match=r"^lock_timeout=.* is not a duration"):
        validate_duration("lock_timeout", value)


def test_describe_target_never_shows_password():
    target = describe_target({"user": "postgres", "password": "pw", "host": "db", "port": "6543", "dbname": "app"})
    assert target == "postgres@db:6543/app"


TARGET = "postgres@127.0.0.1:5432/app"
ERRORS = {
    "wrong password": ('connection to server at "127.0.0.1", port 5432 failed: FATAL:  password authentication failed for user "postgres"',
                       "authentication failed for user postgres on %s: check the password in db_url" % TARGET),
    "unknown database": ('connection to server at "127.0.0.1", port 5432 failed: FATAL:  database "nope" does not exist',
                         "database nope does not exist on %s: create it or fix the database name in db_url" % TARGET),
    "closed port": ('connection to server at "127.0.0.1", port 5432 failed: Connection refused\n'
                    '\tIs the server running on that host and accepting TCP/IP connections?',
                    "cannot reach PostgreSQL at %s: connection refused; check the host and port in db_url and that the server is running" % TARGET),
    "unknown host": ('could not translate host name "nohost" to address: Name or service not known',
                     "host nohost cannot be resolved: fix the host name in db_url"),
    "ssl required": ('connection to server at "127.0.0.1", port 5432 failed: server does not support SSL, but SSL was required',
                     "SSL was required but the server at %s does not offer it: use sslmode=prefer or disable in db_url for a server without TLS" % TARGET),
    "timeout": ("connection to server at \"10.0.0.1\", port 5432 failed: timeout expired",
                "cannot reach PostgreSQL at %s: no answer within connect_timeout; check the host, port and firewall" % TARGET),
}


@pytest.mark.parametrize("message, expected", list(ERRORS.values()), ids=list(ERRORS))
def test_describe_connect_error(message, expected):
    assert describe_connect_error(message, TARGET, "db_url") == expected


def test_describe_connect_error_unknown_message_is_one_masked_line():
    line = describe_connect_error("weird\nfailure with password=abcdef", TARGET, "db_url", ["abcdef"])
    assert "\n" not in line and "abcdef" not in line and line.startswith("cannot connect to %s: weird" % TARGET)


def test_describe_malformed_url_drops_quoted_fragments():
    line = describe_malformed_url("DATABASE_URL", 'invalid dsn: invalid integer value "s3cret" for connection option "port"')
    assert "s3cret" not in line
    assert line.startswith("DATABASE_URL is not a valid PostgreSQL connection URL")


def test_values_libpq_checks_at_connect_count_as_malformed():
    line = describe_connect_error('invalid integer value "s3cret" for connection option "port"', TARGET, "SUPABASE_DB_URL")
    assert line.startswith("SUPABASE_DB_URL is not a valid PostgreSQL connection URL") and "s3cret" not in line
