"""Supabase-style authentication: an HS256 JWT in `Authorization: Bearer`,
and the per-transaction session PostgREST would set up for it.

Row Level Security in the database, not this module, decides what a request
may read: the session runs as the token's role with its claims in
request.jwt.claims, where auth.uid(), auth.jwt() and slogate.is_admin() look.
"""

import json
import uuid
from dataclasses import dataclass, field

import jwt

# The only roles a request may run as. Anything else in a token (postgres,
# supabase_admin, ...) is refused before it gets near SET ROLE.
API_ROLES = ("anon", "authenticated", "service_role")
ANON_CLAIMS = {"role": "anon"}

# The parameterised form of SET LOCAL ROLE plus PostgREST's claim settings:
# set_config(..., true) lasts until the end of the transaction, exactly like
# SET LOCAL, and the role name travels as a bound value, never as SQL text.
REQUEST_SESSION_SQL = (
    "SELECT pg_catalog.set_config('role', %s, true),"
    " pg_catalog.set_config('request.jwt.claims', %s, true),"
    " pg_catalog.set_config('request.jwt.claim.sub', %s, true),"
    " pg_catalog.set_config('request.jwt.claim.role', %s, true)")


class Unauthorized(Exception):
    """No usable token. The reason is for the server log only, never the client."""


@dataclass(frozen=True)
class Identity:
    role: str
    claims: dict = field(default_factory=dict)
    token_key: str = ""  # what rate limits count by: the token's signature, not the token

    @property
    def sub(self):
        return self.claims.get("sub") or ""

    @property
    def is_admin(self):
        metadata = self.claims.get("app_metadata")
        return isinstance(metadata, dict) and metadata.get("admin") is True

    @property
    def label(self):
        """user_role of the metrics row: the token's role, or admin for administrators."""
        return "admin" if self.is_admin else self.role


ANONYMOUS = Identity(role="anon", claims=dict(ANON_CLAIMS))


def bearer_token(authorization):
    """The token of an `Authorization: Bearer <token>` header; None when there is no header."""
    if authorization is None:
        return None
    scheme, unused, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Authorization header is not 'Bearer <token>'")
    return token.strip()


def verify_token(token, secret):
    """The Identity of a valid token, else Unauthorized (bad signature, expired, bad claims)."""
    try:
        claims = jwt.decode(token, secret, algorithms=["HS256"],
                            options={"require": ["exp", "role"], "verify_aud": False})
    except jwt.PyJWTError as exc:
        raise Unauthorized("token rejected: %s" % type(exc).__name__) from None
    role = claims.get("role")
    if role not in API_ROLES:
        raise Unauthorized("token role is not one of %s" % ", ".join(API_ROLES))
    sub = claims.get("sub")
    if sub is not None:
        try:
            uuid.UUID(str(sub))
        except ValueError:
            # auth.uid() casts sub to uuid: a bad one would fail every query as a 500.
            raise Unauthorized("token sub is not a uuid") from None
    if role == "authenticated" and sub is None:
        raise Unauthorized("authenticated token without sub")
    return Identity(role=role, claims=claims, token_key=token.rsplit(".", 1)[-1])


def authenticate(authorization, secret):
    """Who is asking: ANONYMOUS without a header, the token's Identity with a valid one."""
    token = bearer_token(authorization)
    if token is None:
        return ANONYMOUS
    return verify_token(token, secret)


def request_session(identity):
    """(sql, params) that make the current transaction run as `identity`.

    Run it first inside a transaction; it lasts until that transaction ends.
    """
    if identity.role not in API_ROLES:
        raise ValueError("role %r is not an API role" % identity.role)
    return REQUEST_SESSION_SQL, (identity.role, json.dumps(identity.claims), identity.sub, identity.role)
