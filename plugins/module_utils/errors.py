# -*- coding: utf-8 -*-
# Copyright: slogate.supabase contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Error types of slogate.supabase and the masking that keeps secrets out of them.

Standard library only: no Ansible, no database driver.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

MASK = "********"

# Shorter secrets are masked only where their position is known (URL user
# info, password=...): replacing a 1-3 character string everywhere would
# garble every message while protecting nothing a driver would echo anyway.
MIN_LITERAL_SECRET_LENGTH = 4

_URL_PASSWORD = re.compile(r"(?P<head>postgres(?:ql)?://[^:/@\s]*:)(?P<secret>[^@\s]*)(?P<tail>@)", re.IGNORECASE)
_KEYWORD_PASSWORD = re.compile(r"(?P<head>\bpassword\s*=\s*)(?P<secret>'(?:[^'\\]|\\.)*'|[^\s]+)", re.IGNORECASE)
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*")


class SlogateError(Exception):
    """Base of every error this collection reports as a one-line failure."""


class ConfigurationError(SlogateError):
    """An option or input is invalid; the message names it and what to do."""


class ConnectionFailure(SlogateError):
    """The database could not be reached or refused the login."""


class QueryFailure(SlogateError):
    """A statement failed on the server."""

    def __init__(self, message, sqlstate=None):
        super(QueryFailure, self).__init__(message)
        self.sqlstate = sqlstate


def mask_secrets(text, secrets=()):
    """Return text with passwords, JWTs and every given secret replaced by MASK."""
    if text is None:
        return text
    masked = str(text)
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        if len(secret) >= MIN_LITERAL_SECRET_LENGTH:
            masked = masked.replace(secret, MASK)
    masked = _URL_PASSWORD.sub(lambda m: m.group("head") + MASK + m.group("tail"), masked)
    masked = _KEYWORD_PASSWORD.sub(lambda m: m.group("head") + MASK, masked)
    return _JWT.sub(MASK, masked)


def one_line(text):
    """Collapse a possibly multi-line driver message to one line."""
    return " ".join(part.strip() for part in str(text).splitlines() if part.strip())
