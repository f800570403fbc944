"""Keep secrets out of log lines: the database password and the JWT secret
are replaced wherever they appear in a message (driver errors may quote a
connection string)."""

from urllib.parse import quote

import psycopg
from psycopg.conninfo import conninfo_to_dict

MASK = "********"


def url_password(url):
    """The password in a connection URL or key=value string; '' when none or unparsable."""
    try:
        return conninfo_to_dict(url).get("password") or ""
    except psycopg.Error:  # a malformed URL still must not leak: find the password by hand
        rest = url.partition("://")[2] or url
        credentials, at, unused = rest.rpartition("@")
        return credentials.partition(":")[2] if at else ""


def secrets_of(*values):
    """Every form a secret may take in a message: as is and URL-encoded."""
    found = set()
    for value in values:
        if value:
            found.update({value, quote(value, safe="")})
    return sorted(found, key=len, reverse=True)


class Redactor:
    def __init__(self, database_urls=(), other_secrets=()):
        self.secrets = secrets_of(*[url_password(url) for url in database_urls if url], *other_secrets)

    def __call__(self, text):
        """`text` (or str() of an exception) on one line, with every secret masked."""
        text = " ".join(str(text).split())
        for secret in self.secrets:
            text = text.replace(secret, MASK)
        return text
