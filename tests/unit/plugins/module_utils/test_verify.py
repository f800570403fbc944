import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.slogate.supabase.plugins.module_utils.errors import ConfigurationError
from ansible_collections.slogate.supabase.plugins.module_utils.verify import (
    UNSET,
    Check,
    contains,
    first_mismatch,
    judge,
    shape_of,
    similar_names,
    summarize,
)

KIT_FAIL = {"ok": False, "checks": [
    {"name": "tables_exist", "ok": True, "detail": "5 of 5"},
    {"name": "rls_enabled", "ok": False, "detail": "public.audit_log has RLS disabled"},
]}
KIT_PASS = {"ok": True, "checks": [{"name": "tables_exist", "ok": True, "detail": "5 of 5"}]}
CHECK_ROWS = [{"name": "a", "ok": True, "detail": ""}, {"name": "b", "ok": False, "detail": "missing"}]

# name: (shape, value, expect, expect_rows, ok)
CASES = {
    "boolean true": ("boolean", True, UNSET, None, True),
    "boolean false": ("boolean", False, UNSET, None, False),
    "boolean null": ("boolean", None, UNSET, None, False),
    "boolean expect false": ("boolean", False, False, None, True),
    "boolean 1 is not true": ("boolean", 1, True, None, False),
    "json ok": ("json", KIT_PASS, UNSET, None, True),
    "json failing check": ("json", KIT_FAIL, UNSET, None, False),
    "json expect false": ("json", KIT_FAIL, False, None, True),
    "json checks without ok": ("json", {"checks": KIT_FAIL["checks"]}, UNSET, None, False),
    "json plain data": ("json", {"count": 3}, UNSET, None, True),
    "json subset holds": ("json", KIT_FAIL, {"checks": [{"name": "tables_exist", "ok": True}]}, None, True),
    "json subset fails": ("json", KIT_FAIL, {"checks": [{"name": "rls_enabled", "ok": True}]}, None, False),
    "json null": ("json", None, UNSET, None, False),
    "void": ("void", None, UNSET, None, True),
    "rows as checks": ("rows", CHECK_ROWS, UNSET, None, False),
    "rows as checks expect false": ("rows", CHECK_ROWS, False, None, True),
    "rows plain": ("rows", [{"id": 1}], UNSET, None, True),
    "rows count holds": ("rows", [], UNSET, 0, True),
    "rows count fails": ("rows", [{"id": 1}], UNSET, 0, False),
    "rows contain mapping": ("rows", [{"id": 1}, {"id": 2}], {"id": 2}, None, True),
    "scalar no expect": ("scalar", 42, UNSET, None, True),
    "scalar equals": ("scalar", 0, 0, None, True),
    "scalar differs": ("scalar", 3, 0, None, False),
}


@pytest.mark.parametrize("shape, value, expect, expect_rows, ok", list(CASES.values()), ids=list(CASES))
def test_judge(shape, value, expect, expect_rows, ok):
    assert judge(shape, value, expect=expect, expect_rows=expect_rows).ok is ok


def test_failed_checks_named_in_summary():
    verdict = judge("json", KIT_FAIL)
    assert verdict.failed_checks == (Check("rls_enabled", False, "public.audit_log has RLS disabled"),)
    assert summarize("public.verify_x()", verdict) == (
        "public.verify_x() failed: 1 of 2 checks failed - failed checks: rls_enabled (public.audit_log has RLS disabled)")


def test_passing_summary_counts_checks():
    assert summarize("f()", judge("json", KIT_PASS)) == "f() passed: 1 checks ok"


@pytest.mark.parametrize("shape, expect, expect_rows, message", [
    ("void", True, None, "expect does not apply to a void function"),
    ("boolean", {"ok": True}, None, "expect as a mapping or list needs"),
    ("json", UNSET, 0, "expect_rows applies to set-returning functions"),
    ("nonsense", UNSET, None, "unknown result shape"),
])
def test_judge_rejects_expectations_that_cannot_apply(shape, expect, expect_rows, message):
    with pytest.raises(ConfigurationError, match=message):
        judge(shape, None, expect=expect, expect_rows=expect_rows)


@pytest.mark.parametrize("return_type, returns_set, shape", [
    ("boolean", False, "boolean"), ("jsonb", False, "json"), ("json", False, "json"), ("void", False, "void"),
    ("integer", True, "rows"), ("record", False, "rows"), ("text", False, "scalar"),
])
def test_shape_of(return_type, returns_set, shape):
    assert shape_of(return_type, returns_set) == shape


def test_first_mismatch_names_the_path():
    assert first_mismatch({"a": {"b": 1}}, {"a": {"b": 2}}) == "$.a.b: expected 1, got 2"
    assert first_mismatch({"a": 1}, {}) == "$.a: missing"


def test_similar_names():
    names = ["public.verify_migration_success", "public.verify_final_punchlist_migration", "public.unrelated"]
    assert similar_names("public.verify_migration_sucess", names)[0] == "public.verify_migration_success"
    assert "public.verify_final_punchlist_migration" in similar_names("public.migration", names)
    assert similar_names("public.zzz", names) == []


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=5),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=3), children, max_size=3),
    max_leaves=10,
)


@given(JSON)
def test_every_value_contains_itself(value):
    assert contains(value, value)


@given(st.dictionaries(st.text(max_size=3), JSON, max_size=4), st.data())
def test_any_sub_mapping_is_contained(mapping, data):
    keys = data.draw(st.lists(st.sampled_from(sorted(mapping)), unique=True) if mapping else st.just([]))
    assert contains({k: mapping[k] for k in keys}, mapping)


@given(st.dictionaries(st.text(max_size=3), JSON, min_size=1, max_size=4), st.text(min_size=4, max_size=6))
def test_an_absent_key_is_never_contained(mapping, key):
    if key not in mapping:
        assert not contains({key: None}, mapping)


@given(st.lists(st.booleans(), max_size=8))
def test_json_checks_pass_exactly_when_all_ok(oks):
    value = {"checks": [{"name": "c%d" % i, "ok": ok} for i, ok in enumerate(oks)]}
    verdict = judge("json", value)
    assert verdict.ok is all(oks)
    assert len(verdict.failed_checks) == oks.count(False)
