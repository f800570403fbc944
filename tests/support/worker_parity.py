"""Running a module in the Ansible worker and as a module, and comparing the two results."""

import uuid

import psycopg2

PATHS = (True, False)  # in the worker, as a module


def admin(admin_url, statement):
    conn = psycopg2.connect(admin_url)
    conn.autocommit = True
    try:
        conn.cursor().execute(statement)
    finally:
        conn.close()


def create_database(server):
    """(name, url) of a new, empty database; drop_database() removes it."""
    name = "slogate_w_%s" % uuid.uuid4().hex[:12]
    admin(server.admin_url, 'CREATE DATABASE "%s"' % name)
    return name, server.url_for(name)


def drop_database(server, name):
    admin(server.admin_url, 'DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % name)


def database_pair(server):
    """{path: (name, url)}: one new database per path; drop_pair() removes them."""
    return {path: create_database(server) for path in PATHS}


def drop_pair(server, pair):
    for name, _url in pair.values():
        drop_database(server, name)


def comparable(value, names):
    """A result without what differs between two runs: durations, clocks, and the given names (folders, databases)."""
    if isinstance(value, dict):
        return {key: comparable(item, names) for key, item in value.items()
                if key not in ("duration_ms", "server_time", "elapsed_ms", "seconds")}
    if isinstance(value, list):
        return [comparable(item, names) for item in value]
    if isinstance(value, str):
        for name, placeholder in names.items():
            value = value.replace(name, placeholder)
    return value


def marker(module, in_worker):
    return "%s runs %s" % (module, "in the Ansible worker" if in_worker else "as a module")


def run_both(ansible_module, module, args_for, names_for, **options):
    """Run slogate.supabase.<module> in the worker and as a module, with args_for(path); assert both results are the
    same once names_for(path) are replaced by placeholders; return {path: run}."""
    runs = {}
    for path in PATHS:
        runs[path] = ansible_module(module, args_for(path), in_worker=path, verbosity=3, **options)
        assert marker("slogate.supabase." + module, path) in runs[path].stdout, runs[path].stdout[-2000:]
    in_worker, as_module = (comparable(runs[path].result, names_for(path)) for path in PATHS)
    assert in_worker == as_module
    return runs


def filled_pair(server, fill):
    """database_pair() with fill(url) run on each database."""
    pair = database_pair(server)
    for _name, url in pair.values():
        fill(url)
    return pair
