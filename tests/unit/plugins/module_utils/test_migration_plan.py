import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.slogate.supabase.plugins.module_utils.errors import ConfigurationError
from ansible_collections.slogate.supabase.plugins.module_utils.migration_plan import (
    AppliedMigration,
    LocalMigration,
    describe_drift,
    plan_latest,
    plan_rollback,
)


def local(version, statements=("select 1",), name="m"):
    return LocalMigration(version, name, "%s_%s.sql" % (version, name), tuple(statements))


def applied(version, statements=("select 1",), name="m"):
    return AppliedMigration(version, name, None if statements is None else tuple(statements))


def versions(migrations):
    return [m.version for m in migrations]


def test_pending_are_the_unapplied_files_in_order():
    plan = plan_latest([local("1"), local("2"), local("3")], [applied("1")])
    assert versions(plan.to_apply) == ["2", "3"] and not plan.blockers


def test_target_stops_early():
    plan = plan_latest([local("1"), local("2"), local("3")], [], target="2")
    assert versions(plan.to_apply) == ["1", "2"]


def test_unknown_target_is_refused():
    with pytest.raises(ConfigurationError, match="target 9 is not the version"):
        plan_latest([local("1")], [], target="9")


def test_missing_local_blocks_unless_allowed():
    plan = plan_latest([local("1")], [applied("1"), applied("2", name="gone")])
    assert plan.blockers == ("applied but missing locally: 2_gone (restore the files, or set allow_missing_local)",)
    assert not plan_latest([local("1")], [applied("1"), applied("2")], allow_missing_local=True).blockers


def test_out_of_order_blocks_unless_included():
    plan = plan_latest([local("1"), local("2"), local("3")], [applied("1"), applied("3")])
    assert versions(plan.out_of_order) == ["2"]
    assert plan.blockers[0].startswith("older than the newest applied version 3 and never applied: 2_m.sql")
    assert versions(plan_latest([local("1"), local("2"), local("3")], [applied("1"), applied("3")],
                                include_all=True).to_apply) == ["2"]


def test_versions_compare_as_text_like_the_cli():
    plan = plan_latest([local("10"), local("9")], [applied("9")])
    assert versions(plan.out_of_order) == ["10"]  # "10" < "9" as text


@pytest.mark.parametrize("stored, current, detail", [
    (("a", "b"), ("a", "c"), "statement 2 differs from the applied one"),
    (("a",), ("a", "b"), "the file has 2 statements, the applied one had 1"),
    (("a", "b"), ("a", "b"), None),
    (None, ("a",), None),
], ids=["changed statement", "added statement", "same", "history without statements"])
def test_describe_drift(stored, current, detail):
    assert describe_drift(local("1", current), applied("1", stored)) == detail


def test_drift_is_reported_never_applied():
    plan = plan_latest([local("1", ("create table t (a int)",))], [applied("1", ("create table t (a bigint)",))])
    assert plan.drift == (("1", "m", "statement 1 differs from the applied one"),) and not plan.to_apply


def test_rollback_newest_first_down_to_target():
    plan = plan_rollback([local("1"), local("2"), local("3")], [applied("1"), applied("2"), applied("3")], "1", {"2", "3"})
    assert versions(plan.to_revert) == ["3", "2"] and not plan.blockers


def test_rollback_refuses_without_down_script():
    plan = plan_rollback([local("1"), local("2")], [applied("1"), applied("2", name="add_x")], "0", {"1"})
    assert versions(plan.irreversible) == ["2"]
    assert plan.blockers[0].startswith("no down script in supabase/rollbacks for 2_add_x")
    assert not plan_rollback([local("1"), local("2")], [applied("1"), applied("2")], "0", {"1"}, allow_irreversible=True).blockers


def test_rollback_needs_a_target():
    with pytest.raises(ConfigurationError, match="needs a target"):
        plan_rollback([], [], None, set())


VERSIONS = st.lists(st.integers(1, 10 ** 6).map(lambda n: "%014d" % n), unique=True, max_size=12)


@given(VERSIONS, st.data())
def test_latest_then_latest_has_nothing_pending(all_versions, data):
    files = [local(v) for v in sorted(all_versions)]
    done = data.draw(st.integers(0, len(files)))
    plan = plan_latest(files, [applied(m.version) for m in files[:done]])
    assert versions(plan.to_apply) == versions(files[done:])
    after = [applied(m.version) for m in files]
    assert not plan_latest(files, after).to_apply


@given(VERSIONS, st.data())
def test_rollback_reverts_exactly_the_versions_above_target(all_versions, data):
    history = [applied(v) for v in sorted(all_versions)]
    target = data.draw(st.sampled_from(["0"] + sorted(all_versions)))
    plan = plan_rollback([], history, target, set(all_versions))
    assert versions(plan.to_revert) == sorted((v for v in all_versions if v > target), reverse=True)
