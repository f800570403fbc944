# -*- coding: utf-8 -*-
# Copyright: slogate.supabase contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connection settings as plain data: where the URL comes from, how a target is
named in messages, and what a driver's connection error means in one line.

Standard library only: no Ansible, no database driver.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from ansible_collections.slogate.supabase.plugins.module_utils.errors import (
    ConfigurationError,
    mask_secrets,
    one_line,
)

# The order users expect: an explicit option wins, then the Supabase name,
# then the name most frameworks use.
DB_URL_ENV_VARS = ("SUPABASE_DB_URL", "DATABASE_URL")

DURATION = re.compile(r"^\s*\d+(\.\d+)?\s*(us|ms|s|min|h|d)?\s*$")

_QUOTED = re.compile(r'"[^"]*"')


def resolve_db_url(option_value, environ):
    """Return (url, origin) from the db_url option or the environment.

    origin names where the URL came from (``db_url`` or the variable), so an
    error can say which setting to fix without showing the URL itself.
    """
    if option_value:
        return option_value, "db_url"
    for name in DB_URL_ENV_VARS:
        if environ.get(name):
            return environ[name], name
    raise ConfigurationError(
        "no database URL: set the db_url option or the %s environment variable "
        "(postgresql://user:password@host:port/dbname)" % " or ".join(DB_URL_ENV_VARS)
    )


def validate_duration(name, value):
    """Return a PostgreSQL duration setting as text, or raise ConfigurationError.

    A bare number means milliseconds, as in PostgreSQL itself.
    """
    if value is None or value == "":
        return None
    text = str(value).strip()
    if not DURATION.match(text):
        raise ConfigurationError(
            "%s=%r is not a duration: use milliseconds (5000) or a number with a unit "
            "(ms, s, min, h, d), e.g. '5s'" % (name, str(value))
        )
    return text.replace(" ", "")


def describe_target(dsn_params):
    """Name a connection target as user@host:port/dbname, never with its password."""
    host = dsn_params.get("host") or dsn_params.get("hostaddr") or "local socket"
    port = dsn_params.get("port") or "5432"
    user = dsn_params.get("user") or "(default user)"
    dbname = dsn_params.get("dbname") or dsn_params.get("user") or "(default database)"
    return "%s@%s:%s/%s" % (user, host, port, dbname)


def describe_malformed_url(origin, driver_message):
    """One line for a URL the driver could not parse.

    Quoted fragments are dropped because in a malformed URL the driver may quote
    a piece of the password (user:secret/db parses 'secret' as the port).
    """
    reason = _QUOTED.sub('"..."', one_line(driver_message))
    reason = re.sub(r"^invalid dsn:\s*", "", reason)
    return (
        "%s is not a valid PostgreSQL connection URL (%s); expected "
        "postgresql://user:password@host:port/dbname" % (origin, mask_secrets(reason))
    )


# (pattern in the driver's message, what it means and what to do). First match wins.
_CONNECT_ERRORS = (
    (re.compile(r"password authentication failed for user \"(?P<user>[^\"]*)\""),
     "authentication failed for user {user} on {target}: check the password in {origin}"),
    (re.compile(r"no password supplied"),
     "the server at {target} asks for a password and {origin} has none: add it to the URL"),
    (re.compile(r"database \"(?P<db>[^\"]*)\" does not exist"),
     "database {db} does not exist on {target}: create it or fix the database name in {origin}"),
    (re.compile(r"role \"(?P<role>[^\"]*)\" does not exist"),
     "role {role} does not exist on {target}: fix the user name in {origin}"),
    (re.compile(r"could not translate host name \"(?P<host>[^\"]*)\""),
     "host {host} cannot be resolved: fix the host name in {origin}"),
    (re.compile(r"Connection refused"),
     "cannot reach PostgreSQL at {target}: connection refused; check the host and port "
     "in {origin} and that the server is running"),
    (re.compile(r"timeout expired|timed out", re.IGNORECASE),
     "cannot reach PostgreSQL at {target}: no answer within connect_timeout; check the "
     "host, port and firewall"),
    (re.compile(r"No route to host|Network is unreachable|Name or service not known"),
     "cannot reach PostgreSQL at {target}: {first}"),
    (re.compile(r"server does not support SSL, but SSL was required"),
     "SSL was required but the server at {target} does not offer it: use sslmode=prefer "
     "or disable in {origin} for a server without TLS"),
    (re.compile(r"SSL|certificate", re.IGNORECASE),
     "SSL negotiation with {target} failed: {first}; check sslmode, sslrootcert and the "
     "server's certificate"),
    (re.compile(r"no pg_hba\.conf entry"),
     "the server at {target} does not accept this client (no pg_hba.conf entry): allow "
     "the client's address or use the pooler's URL"),
    (re.compile(r"too many clients|remaining connection slots"),
     "the server at {target} has no free connection slots: retry later or use a pooler"),
    (re.compile(r"the database system is (?P<state>starting up|shutting down|in recovery mode)"),
     "the server at {target} is {state}: retry when it is ready"),
)


# libpq parses some values (port, sslmode...) only when it connects.
_MALFORMED = re.compile(r"for connection option|invalid connection option|invalid URI|invalid \w+ value")


def describe_connect_error(driver_message, target, origin, secrets=()):
    """Turn a driver's connection error into one line naming the target and the fix."""
    if _MALFORMED.search(one_line(driver_message)):
        return describe_malformed_url(origin, driver_message)
    first = mask_secrets(one_line(driver_message), secrets)
    for pattern, template in _CONNECT_ERRORS:
        match = pattern.search(first)
        if match:
            values = dict(match.groupdict(), target=target, origin=origin, first=first)
            return mask_secrets(template.format(**values), secrets)
    return mask_secrets("cannot connect to %s: %s" % (target, first), secrets)
