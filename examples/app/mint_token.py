"""Demo JWTs for the app, signed HS256 with its JWT_SECRET.

    mint_token.py [--secret-file FILE] [--kind all|admin|regular|expired|anon|service] [--json] [--ttl 3600]

The secret comes from --secret-file, else from the JWT_SECRET environment
variable (--secret SECRET works too, but puts it in the process list).
--kind all (the default) prints the runbook's shell variables:

    ADMIN_TOKEN=...
    REGULAR_USER_TOKEN=...
    EXPIRED_TOKEN=...

--json prints {"admin": ..., "regular": ..., "expired": ...} instead, for a
playbook. A single --kind prints that token alone. The users are fixed
(ADMIN_SUB, REGULAR_SUB), so tests and smoke checks know whom they act as.
"""

import argparse
import json
import os
import sys
import time

import jwt

ADMIN_SUB = "00000000-0000-4000-8000-00000000ad01"
REGULAR_SUB = "00000000-0000-4000-8000-000000000001"
EXPIRED_SECONDS_AGO = 3600
KINDS = ("admin", "regular", "expired", "anon", "service")
SHELL_NAMES = {"admin": "ADMIN_TOKEN", "regular": "REGULAR_USER_TOKEN", "expired": "EXPIRED_TOKEN"}
MIN_SECRET_LENGTH = 32


def claims(kind, now, ttl=3600, sub=None):
    """The claims of a demo token of `kind`, issued at `now` (epoch seconds)."""
    if kind == "anon":
        body = {"role": "anon"}
    elif kind == "service":
        body = {"role": "service_role"}
    else:
        admin = kind == "admin"
        body = {"sub": sub or (ADMIN_SUB if admin else REGULAR_SUB), "role": "authenticated",
                "aud": "authenticated", "app_metadata": {"admin": admin}}
    expires = now - EXPIRED_SECONDS_AGO if kind == "expired" else now + ttl
    return dict(body, iss="slogate-demo", iat=int(min(now, expires) - 1), exp=int(expires))


def mint(secret, kind, ttl=3600, sub=None, now=None):
    """One signed token of `kind` (see KINDS)."""
    if kind not in KINDS:
        raise ValueError("kind must be one of %s, got %r" % (", ".join(KINDS), kind))
    return jwt.encode(claims(kind, time.time() if now is None else now, ttl, sub), secret, algorithm="HS256")


def demo_tokens(secret, ttl=3600, now=None):
    """{"admin", "regular", "expired"}: the tokens the runbook's smoke tests use."""
    return {kind: mint(secret, kind, ttl, now=now) for kind in SHELL_NAMES}


def read_secret(args):
    if args.secret_file:
        with open(args.secret_file, encoding="utf-8") as handle:
            return handle.read().strip()
    return args.secret or os.environ.get("JWT_SECRET", "")


def main(argv=None):
    parser = argparse.ArgumentParser(prog="mint_token.py", description="Print demo JWTs for the slogate demo app.")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--secret-file", help="file holding the JWT secret")
    source.add_argument("--secret", help="the JWT secret itself (visible to other users in ps)")
    parser.add_argument("--kind", choices=("all",) + KINDS, default="all")
    parser.add_argument("--sub", help="user uuid for an admin/regular/expired token (default: the demo users)")
    parser.add_argument("--ttl", type=int, default=3600, help="seconds a token stays valid (default 3600)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of shell variables")
    args = parser.parse_args(argv)
    try:
        secret = read_secret(args)
    except OSError as exc:
        sys.stderr.write("mint_token.py: error: cannot read --secret-file: %s\n" % exc.strerror)
        return 2
    if len(secret) < MIN_SECRET_LENGTH:
        sys.stderr.write("mint_token.py: error: the JWT secret must be at least %d characters "
                         "(--secret-file, --secret or JWT_SECRET)\n" % MIN_SECRET_LENGTH)
        return 2
    if args.kind != "all":
        token = mint(secret, args.kind, args.ttl, args.sub)
        print(json.dumps({args.kind: token}) if args.json else token)
        return 0
    tokens = {kind: mint(secret, kind, args.ttl, args.sub) for kind in SHELL_NAMES}
    if args.json:
        print(json.dumps(tokens))
    else:
        for kind, token in tokens.items():
            print("%s=%s" % (SHELL_NAMES[kind], token))
    return 0


if __name__ == "__main__":
    sys.exit(main())
