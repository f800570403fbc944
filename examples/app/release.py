"""Releases of the demo app under one root folder, and which one is current.

    release.py build --root DIR --id ID [--fault-error-rate X] [--fault-latency-ms N] [--fault-cache-bypass]
    release.py switch --root DIR --id ID
    release.py current --root DIR
    release.py list --root DIR

DIR/releases/ID holds a copy of the app code and its release.env (RELEASE_ID
and the fault settings); DIR/current is a relative symlink to the current
release. `build` prints `built ID`, or `unchanged ID` when that release
already exists with the same content (a different one is refused: a release
never changes once built). `switch` repoints DIR/current atomically (a new
symlink renamed over the old one: readers see the old or the new release,
never none) and prints the previous release id (an empty line when there was
none). Errors are one line on stderr, exit 2.

Importable: build(), switch(), current(), releases() do the same and raise
ReleaseError.
"""

import argparse
import filecmp
import os
import re
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))

from demoapp.config import ConfigError, Faults  # noqa: E402
from demoapp.envfile import format_env  # noqa: E402

APP_DIR = os.path.dirname(os.path.realpath(__file__))
# What a release needs to run; the rest of this folder (README, tools, unit templates) stays out.
RELEASE_CONTENT = ("demoapp", "launch.py", "cache_worker.py")
RELEASES = "releases"
CURRENT = "current"
RELEASE_ENV = "release.env"
RELEASE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")
IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc")
FAULT_OPTIONS = {"FAULT_ERROR_RATE": "--fault-error-rate", "FAULT_LATENCY_MS": "--fault-latency-ms",
                 "FAULT_CACHE_BYPASS": "--fault-cache-bypass", "FAULT_ADMIN_OPEN": "--fault-admin-open"}


class ReleaseError(Exception):
    """One line for the user: what, which, why."""


def check_id(release_id):
    if not RELEASE_ID.match(release_id or ""):
        raise ReleaseError("bad release id %r: use 1-64 letters, digits, '.', '_' or '-', starting with a letter or digit"
                           % release_id)
    return release_id


def releases(root):
    """The ids of the releases built under root, sorted."""
    folder = os.path.join(root, RELEASES)
    if not os.path.isdir(folder):
        return []
    return sorted(name for name in os.listdir(folder) if RELEASE_ID.match(name) and
                  os.path.isdir(os.path.join(folder, name)))


def release_env(release_id, faults):
    return format_env(dict({"RELEASE_ID": release_id}, **faults.as_env()))


def _stage(root, release_id, faults, source):
    """The release in a temp folder next to its final place (same file system, so rename works)."""
    parent = os.path.join(root, RELEASES)
    os.makedirs(parent, exist_ok=True)
    staging = tempfile.mkdtemp(prefix=".build-%s-" % release_id, dir=parent)
    os.chmod(staging, 0o755)
    for name in RELEASE_CONTENT:
        path = os.path.join(source, name)
        if os.path.isdir(path):
            shutil.copytree(path, os.path.join(staging, name), ignore=IGNORED)
        else:
            shutil.copy2(path, os.path.join(staging, name))
    with open(os.path.join(staging, RELEASE_ENV), "w", encoding="utf-8") as handle:
        handle.write(release_env(release_id, faults))
    return staging


def _same_tree(left, right):
    compared = filecmp.dircmp(left, right, ignore=["__pycache__"])
    if compared.left_only or compared.right_only or compared.funny_files:
        return False
    unused, mismatch, errors = filecmp.cmpfiles(left, right, compared.common_files, shallow=False)
    if mismatch or errors:
        return False
    return all(_same_tree(os.path.join(left, d), os.path.join(right, d)) for d in compared.common_dirs)


def build(root, release_id, faults=Faults(), source=APP_DIR):
    """Build release `release_id`; True when built, False when it already existed unchanged."""
    check_id(release_id)
    target = os.path.join(root, RELEASES, release_id)
    try:
        staging = _stage(root, release_id, faults, source)
    except OSError as exc:
        raise ReleaseError("cannot build release %s in %s: %s" % (release_id, root, exc)) from None
    try:
        if os.path.exists(target):
            if _same_tree(staging, target):
                return False
            raise ReleaseError("release %s already exists in %s with other content; build a new release id"
                               % (release_id, os.path.join(root, RELEASES)))
        os.rename(staging, target)
        return True
    finally:
        if os.path.exists(staging):
            shutil.rmtree(staging)


def current(root):
    """The id DIR/current points to, or None."""
    link = os.path.join(root, CURRENT)
    if not os.path.islink(link):
        return None
    return os.path.basename(os.path.normpath(os.readlink(link)))


def switch(root, release_id):
    """Point DIR/current at `release_id`; return the previous id (None if none)."""
    check_id(release_id)
    known = releases(root)
    if release_id not in known:
        raise ReleaseError("unknown release %r in %s (built: %s)" % (release_id, root, ", ".join(known) or "none"))
    link = os.path.join(root, CURRENT)
    if os.path.exists(link) and not os.path.islink(link):
        raise ReleaseError("%s exists and is not a symlink; move it away first" % link)
    previous = current(root)
    temp_link = os.path.join(root, ".%s.%d" % (CURRENT, os.getpid()))
    if os.path.lexists(temp_link):
        os.unlink(temp_link)
    os.symlink(os.path.join(RELEASES, release_id), temp_link)  # relative: the root folder may move
    os.replace(temp_link, link)
    return previous


def _faults(args):
    try:
        return Faults.from_env({"FAULT_ERROR_RATE": args.fault_error_rate, "FAULT_LATENCY_MS": args.fault_latency_ms,
                                "FAULT_CACHE_BYPASS": "true" if args.fault_cache_bypass else "false",
                                "FAULT_ADMIN_OPEN": "true" if args.fault_admin_open else "false"})
    except ConfigError as exc:
        message = str(exc)
        for variable, option in FAULT_OPTIONS.items():
            message = message.replace(variable, option)
        raise ReleaseError(message) from None


def parser():
    main_parser = argparse.ArgumentParser(prog="release.py", description="Build and switch demo app releases.")
    commands = main_parser.add_subparsers(dest="command", required=True)
    build_parser = commands.add_parser("build", help="copy the app into ROOT/releases/ID with its release.env")
    build_parser.add_argument("--fault-error-rate", default="0", help="share (0..1) of searches that answer 500")
    build_parser.add_argument("--fault-latency-ms", default="0", help="extra milliseconds on every search")
    build_parser.add_argument("--fault-cache-bypass", action="store_true", help="search never uses the cache")
    build_parser.add_argument("--fault-admin-open", action="store_true", help="admin endpoints answer regular users (a 403 leak)")
    switch_parser = commands.add_parser("switch", help="point ROOT/current at release ID; print the previous id")
    for command in (build_parser, switch_parser):
        command.add_argument("--root", required=True)
        command.add_argument("--id", required=True, dest="release_id")
    for name, text in (("current", "print the current release id"), ("list", "print the built release ids")):
        commands.add_parser(name, help=text).add_argument("--root", required=True)
    return main_parser


def run(args):
    """What the command prints, or ReleaseError."""
    root = os.path.abspath(args.root)
    if args.command == "build":
        built = build(root, args.release_id, _faults(args))
        return "%s %s" % ("built" if built else "unchanged", args.release_id)
    if args.command == "switch":
        return switch(root, args.release_id) or ""
    if args.command == "list":
        return "\n".join(releases(root))
    release_id = current(root)
    if release_id is None:
        raise ReleaseError("no current release in %s" % root)
    return release_id


def main(argv=None):
    args = parser().parse_args(argv)
    try:
        output = run(args)
    except ReleaseError as exc:
        sys.stderr.write("release.py: error: %s\n" % exc)
        return 2
    print(output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
