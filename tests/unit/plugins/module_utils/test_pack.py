import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ansible_collections.slogate.supabase.plugins.module_utils.errors import ConfigurationError
from ansible_collections.slogate.supabase.plugins.module_utils.pack import (
    PackFile,
    changed,
    newest_version,
    next_version,
    pack_from_params,
    plan_install,
    summarize,
)

PACK = [PackFile("20260101000100_kit_tables.sql", "create tables;", "drop tables;"),
        PackFile("20260101000200_kit_views.sql", "create views;", "drop views;")]


def test_empty_project_keeps_the_pack_names():
    planned = plan_install(PACK, {}, {})
    assert [(p.target, p.action, p.add_rollback) for p in planned] == [
        ("20260101000100_kit_tables.sql", "add", True), ("20260101000200_kit_views.sql", "add", True)]
    assert changed(planned)


def test_newer_project_gets_versions_after_its_newest():
    planned = plan_install(PACK, {"20260301120000_app.sql": "app;"}, {})
    assert [p.target for p in planned] == ["20260301120001_kit_tables.sql", "20260301120002_kit_views.sql"]


def test_present_by_content_whatever_the_name():
    existing = {"20260301120001_kit_tables.sql": "create tables;", "20260301120002_renamed.sql": "create views;"}
    rollbacks = {"20260301120001_kit_tables.sql": "drop tables;", "20260301120002_renamed.sql": "drop views;"}
    planned = plan_install(PACK, existing, rollbacks)
    assert [(p.target, p.action, p.add_rollback) for p in planned] == [
        ("20260301120001_kit_tables.sql", "present", False), ("20260301120002_renamed.sql", "present", False)]
    assert not changed(planned)
    assert summarize(planned) == "2 already present"


def test_present_migration_without_its_down_script_gets_it():
    planned = plan_install(PACK[:1], {"20260301120001_kit_tables.sql": "create tables;"}, {})
    assert planned[0].action == "present" and planned[0].add_rollback
    assert summarize(planned) == "added the down scripts of 20260301120001_kit_tables.sql; 1 already present"


def test_a_user_file_with_the_same_name_is_never_overwritten():
    planned = plan_install(PACK[:1], {"20260101000100_kit_tables.sql": "the user's own work;"}, {})
    assert planned[0].action == "add" and planned[0].target == "20260101000101_kit_tables.sql"


def test_a_stray_down_script_name_is_not_reused():
    planned = plan_install(PACK[:1], {}, {"20260101000100_kit_tables.sql": "someone else's"})
    assert planned[0].target == "20260101000101_kit_tables.sql"


@pytest.mark.parametrize("version, expected", [
    ("20260101235959", "20260102000000"), ("20261231235959", "20270101000000"),
    ("0001", "0002"), ("99999999999999", "100000000000000"), ("20261399000000", "20261399000001"),
])
def test_next_version(version, expected):
    assert next_version(version) == expected


def test_newest_version_uses_text_order_and_skips_invalid_names():
    assert newest_version(["2_a.sql", "10_b.sql", "README.md", "x_y.sql"]) == "2"


@pytest.mark.parametrize("files, message", [
    ([{"name": "kit.sql", "content": "x"}], "not a CLI-valid migration name"),
    ([{"name": "1_a.sql"}], r"files\[0\] needs a name and a content"),
])
def test_bad_pack_is_named(files, message):
    with pytest.raises(ConfigurationError, match=message):
        plan_install(pack_from_params(files), {}, {})


def test_duplicate_pack_names_are_refused():
    with pytest.raises(ConfigurationError, match="pack lists a file twice: 1_a.sql"):
        plan_install([PackFile("1_a.sql", "x"), PackFile("1_a.sql", "y")], {}, {})


TIMESTAMPS = st.datetimes(min_value=datetime.datetime(2020, 1, 1), max_value=datetime.datetime(2030, 1, 1)).map(lambda d: d.strftime("%Y%m%d%H%M%S"))
PROJECT = st.dictionaries(st.builds("{}_{}.sql".format, TIMESTAMPS, st.sampled_from(["a", "b", "init"])),
                          st.text(max_size=5), max_size=6)


@given(PROJECT)
def test_added_files_sort_after_every_existing_migration_in_pack_order(project):
    planned = plan_install(PACK, project, {})
    added = [p.target for p in planned if p.action == "add"]
    newest = newest_version(project)
    assert all(newest is None or name.split("_")[0] > newest for name in added)
    assert added == sorted(added)
    assert not set(added) & set(project)


@given(PROJECT)
def test_installing_twice_changes_nothing_the_second_time(project):
    first = plan_install(PACK, project, {})
    after = dict(project)
    rollbacks = {}
    for item in first:
        if item.action == "add":
            after[item.target] = item.content
        if item.add_rollback:
            rollbacks[item.target] = item.rollback
    assert not changed(plan_install(PACK, after, rollbacks))
