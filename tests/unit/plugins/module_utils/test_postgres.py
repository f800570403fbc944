import datetime
import decimal
import json
import uuid

import pytest

from ansible_collections.slogate.supabase.plugins.module_utils.postgres import (
    connection_secrets,
    jsonable,
    pg_argument_spec,
)


def test_argument_spec_hides_the_url():
    spec = pg_argument_spec()
    assert spec["db_url"]["no_log"] is True
    assert set(spec) == {"db_url", "connect_timeout", "application_name", "statement_timeout", "lock_timeout"}


def test_argument_spec_adds_module_options():
    assert pg_argument_spec(function=dict(type="str"))["function"] == dict(type="str")


@pytest.mark.parametrize("value, expected", [
    (decimal.Decimal("3"), 3),
    (decimal.Decimal("2.5"), 2.5),
    (datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc), "2026-01-02T03:04:05+00:00"),
    (datetime.date(2026, 1, 2), "2026-01-02"),
    (datetime.timedelta(seconds=90), 90.0),
    (uuid.UUID(int=1), "00000000-0000-0000-0000-000000000001"),
    (memoryview(b"\x01\xff"), "\\x01ff"),
    ({"a": [decimal.Decimal("1.5"), (1, 2)]}, {"a": [1.5, [1, 2]]}),
    (True, True),
])
def test_jsonable(value, expected):
    converted = jsonable(value)
    assert converted == expected
    json.dumps(converted)


def test_connection_secrets_include_encoded_password():
    secrets = connection_secrets("postgresql://u:p%40ss%2Fword@h/d")
    assert "p@ss/word" in secrets and "p%40ss%2Fword" in secrets
