import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.slogate.supabase.plugins.module_utils.errors import MASK, mask_secrets, one_line

CASES = {
    "url userinfo": ("connect postgresql://app:s3cr3t@db:5432/x failed", (), "connect postgresql://app:%s@db:5432/x failed" % MASK),
    "postgres scheme": ("postgres://u:pw@h/d", (), "postgres://u:%s@h/d" % MASK),
    "keyword form": ("host=db password=hunter22 dbname=x", (), "host=db password=%s dbname=x" % MASK),
    "quoted keyword": ("password='a b c' user=x", (), "password=%s user=x" % MASK),
    "literal secret": ("token abcd1234 leaked", ("abcd1234",), "token %s leaked" % MASK),
    "short literal kept": ("role abc", ("abc",), "role abc"),
    "jwt": ("Bearer eyJhbGciOiJIUzI1NiJ9.eyJyb2xlIjoiYWRtaW4ifQ.c2lnbmF0dXJl", (), "Bearer %s" % MASK),
    "nothing to hide": ("relation foo does not exist", ("longsecret",), "relation foo does not exist"),
}


@pytest.mark.parametrize("text, secrets, expected", list(CASES.values()), ids=list(CASES))
def test_mask_secrets(text, secrets, expected):
    assert mask_secrets(text, secrets) == expected


def test_mask_secrets_keeps_none():
    assert mask_secrets(None) is None


def test_one_line_joins_lines():
    assert one_line("connection failed\n\tIs the server running?\n") == "connection failed Is the server running?"


PASSWORDS = st.text(alphabet=string.ascii_letters + string.digits + "!#$%&()*+,-.;<=>?[]^_{|}~", min_size=1, max_size=30)


@given(PASSWORDS)
def test_password_in_url_never_survives(password):
    text = "could not connect to postgresql://postgres:%s@127.0.0.1:5432/postgres: refused" % password
    assert "postgres:%s@" % password not in mask_secrets(text)


@given(st.text(min_size=4, max_size=40), st.text(max_size=60), st.text(max_size=60))
def test_literal_secret_never_survives(secret, before, after):
    assert secret not in mask_secrets(before + secret + after, [secret]) or secret in MASK
