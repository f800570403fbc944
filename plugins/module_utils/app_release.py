# -*- coding: utf-8 -*-
# Copyright: slogate.supabase contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""App releases under one root folder: ROOT/releases/<id>/ and the ROOT/current symlink.

Used on both sides of slogate.supabase.app_release: the action plugin packs the
app on the controller (pack), the module unpacks it on the host, writes the
release.env and switches `current` (apply_release).

Standard library only: no Ansible.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import fnmatch
import hashlib
import os
import posixpath
import re
import shutil
import stat
import tarfile
import tempfile
import zlib
from collections import namedtuple

from ansible_collections.slogate.supabase.plugins.module_utils.errors import ConfigurationError, SlogateError

RELEASES = "releases"
CURRENT = "current"
MARKER = ".slogate-unpacked"
ENV_FILE = "release.env"
ENV_HEADER = "# written by slogate.supabase.app_release"
DEFAULT_EXCLUDE = ("__pycache__", "*.pyc")

RELEASE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")
ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
DIGEST = re.compile(r"[0-9a-f]{64}")
# Every character str.splitlines() breaks on: a reader using it would see two lines.
LINE_BREAKS = frozenset("\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029")
# As many links as Linux follows before ELOOP.
MAX_LINK_HOPS = 40
CHUNK = 1024 * 1024

Member = namedtuple("Member", "name kind linkname")
Packed = namedtuple("Packed", "digest files")


class ReleaseError(SlogateError):
    """The release folder or the archive is not what this run needs; the message says what to do."""


def check_release_id(release_id):
    """The id, or ConfigurationError when it is not 1-64 letters, digits, '.', '_' or '-' starting with a letter or digit."""
    if not isinstance(release_id, str) or not RELEASE_ID.fullmatch(release_id):
        raise ConfigurationError("release %r is not a valid release id: use 1 to 64 letters, digits, '.', '_' or '-', "
                                 "starting with a letter or digit" % (release_id,))
    return release_id


def env_value(key, value):
    """The text of one env value; lists, dicts and line breaks cannot be one KEY=VALUE line."""
    if isinstance(value, (dict, list, tuple, set)):
        raise ConfigurationError("env key %s: the value is a %s; give a string, number or boolean"
                                 % (key, type(value).__name__))
    text = "" if value is None else str(value)
    if any(char in LINE_BREAKS for char in text):
        raise ConfigurationError("env key %s: the value contains a line break; an env file holds one line per key" % key)
    return text


def render_env(release_id, env):
    """release.env text: the header comment, RELEASE_ID first, then the keys sorted like Jinja's dictsort."""
    lines = [ENV_HEADER, "RELEASE_ID=%s" % check_release_id(release_id)]
    for key in sorted(env, key=lambda k: (str(k).lower(), str(k))):
        if not isinstance(key, str) or not ENV_KEY.fullmatch(key):
            raise ConfigurationError("env key %r is not a valid variable name: use letters, digits and '_', "
                                     "not starting with a digit" % (key,))
        if key == "RELEASE_ID":
            raise ConfigurationError("env key RELEASE_ID is set from the release option; leave it out of env")
        lines.append("%s=%s" % (key, env_value(key, env[key])))
    return "\n".join(lines) + "\n"


def parse_env(text):
    """{key: value} of an env file as render_env writes it: values are taken verbatim, comments and blank lines skipped."""
    values = {}
    for number, line in enumerate(text.split("\n"), 1):
        if not line or line.startswith("#"):
            continue
        key, sep, value = line.partition("=")
        if not sep or not ENV_KEY.fullmatch(key):
            raise ConfigurationError("env file line %d: expected KEY=VALUE" % number)
        values[key] = value
    return values


class ContentDigest:
    """sha256 over entries (relative path, kind, mode, size, bytes) fed in path order.

    Files, folders and symlinks each count, so an empty folder, a new mode or a
    retargeted link is new content; mtimes and owners are not content.
    """

    KINDS = ("file", "dir", "symlink")

    def __init__(self):
        self._sha = hashlib.sha256()
        self._last = None

    def begin(self, path, kind, mode, size):
        if kind not in self.KINDS:
            raise ValueError("unknown entry kind %r" % kind)
        if self._last is not None and path <= self._last:
            raise ValueError("entries must come in path order: %r after %r" % (path, self._last))
        self._last = path
        header = "%s\0%s\0%o\0%d\0" % (kind, path, 0 if kind == "symlink" else mode & 0o7777, size)
        self._sha.update(header.encode("utf-8", "surrogateescape"))

    def update(self, data):
        self._sha.update(data)

    def hexdigest(self):
        return self._sha.hexdigest()


def content_digest(entries):
    """Digest of (path, kind, mode, data) tuples in any order; data is the file bytes or the link target."""
    digest = ContentDigest()
    for path, kind, mode, data in sorted(entries, key=lambda entry: entry[0]):
        if isinstance(data, str):
            data = data.encode("utf-8", "surrogateescape")
        digest.begin(path, kind, mode, len(data))
        digest.update(data)
    return digest.hexdigest()


def excluded(relpath, patterns):
    """True when the entry's name or its path relative to the source matches an fnmatch pattern."""
    name = posixpath.basename(relpath)
    return any(fnmatch.fnmatchcase(name, p) or fnmatch.fnmatchcase(relpath, p) for p in patterns)


def _resolve(parts, links, hops=0):
    """Components of a path inside the release once the archive's own links are followed; None when it leaves."""
    resolved = []
    for part in parts:
        if part in ("", "."):
            continue
        if part == "..":
            if not resolved:
                return None
            resolved.pop()
            continue
        resolved.append(part)
        target = links.get("/".join(resolved))
        if target is None:
            continue
        if hops >= MAX_LINK_HOPS or target.startswith("/"):
            return None
        resolved = _resolve(resolved[:-1] + target.split("/"), links, hops + 1)
        if resolved is None:
            return None
    return resolved


def check_members(members):
    """Raise ReleaseError for the first member that could write or point outside the release folder.

    Refused: absolute names, '..' in a name, duplicate names, members inside a
    link member (extracting them would write through the link), links whose
    target leaves the release once the archive's other links are followed,
    hard links, devices and fifos.
    """
    links, seen = {}, set()
    for member in members:
        name = member.name
        if name.startswith("/"):
            raise ReleaseError("archive member %s: absolute path; refusing the archive" % name)
        parts = name.split("/")
        if ".." in parts:
            raise ReleaseError("archive member %s: contains '..'; refusing the archive" % name)
        clean = posixpath.normpath(name)
        if member.kind not in ContentDigest.KINDS:
            raise ReleaseError("archive member %s: a %s; only files, folders and symlinks are released" % (name, member.kind))
        if clean in seen:
            raise ReleaseError("archive member %s: appears twice; refusing the archive" % name)
        seen.add(clean)
        prefix = clean.split("/")
        for depth in range(1, len(prefix)):
            parent = "/".join(prefix[:depth])
            if parent in links:
                raise ReleaseError("archive member %s: inside the link %s; refusing the archive" % (name, parent))
        if member.kind == "symlink":
            links[clean] = member.linkname
    for name, target in links.items():
        parent = name.split("/")[:-1]
        if target.startswith("/") or _resolve(parent + target.split("/"), links) is None:
            raise ReleaseError("archive member %s: link to %s points outside the release; refusing the archive"
                               % (name, target))


def _kind_of(mode):
    if stat.S_ISREG(mode):
        return "file"
    if stat.S_ISDIR(mode):
        return "dir"
    if stat.S_ISLNK(mode):
        return "symlink"
    if stat.S_ISFIFO(mode):
        return "fifo"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "device"


def source_entries(src, exclude=DEFAULT_EXCLUDE):
    """[(relative path, absolute path, lstat)] of the folder src, sorted by relative path, exclusions left out."""
    entries = []
    pending = [""]
    while pending:
        folder = pending.pop()
        for entry in os.scandir(os.path.join(src, folder) if folder else src):
            relpath = posixpath.join(folder, entry.name) if folder else entry.name
            if excluded(relpath, exclude):
                continue
            info = entry.stat(follow_symlinks=False)
            entries.append((relpath, entry.path, info))
            if stat.S_ISDIR(info.st_mode):
                pending.append(relpath)
    entries.sort(key=lambda item: item[0])
    return entries


class _HashingReader:
    """A file object that feeds what tarfile reads from it to the digest too, so each file is read once."""

    def __init__(self, handle, digest):
        self._handle = handle
        self._digest = digest

    def read(self, size=-1):
        data = self._handle.read(size)
        self._digest.update(data)
        return data


def pack(src, exclude=DEFAULT_EXCLUDE, archive_path=None):
    """Digest and file count of the folder src; with archive_path, also write it there as a tar.gz.

    Fails before writing anything that the host would refuse (special files,
    links pointing outside src).
    """
    if not os.path.isdir(src):
        raise ConfigurationError("src %s is not a folder" % src)
    entries = source_entries(src, tuple(exclude))
    members = []
    for relpath, unused, info in entries:
        kind = _kind_of(info.st_mode)
        if kind not in ContentDigest.KINDS:
            raise ConfigurationError("src %s: %s is a %s; only files, folders and symlinks can be released"
                                     % (src, relpath, kind))
        members.append(Member(relpath, kind, os.readlink(os.path.join(src, relpath)) if kind == "symlink" else ""))
    try:
        check_members(members)
    except ReleaseError as exc:
        raise ConfigurationError("src %s: %s" % (src, str(exc).replace("; refusing the archive", "")))
    digest = ContentDigest()
    files = 0
    tar = tarfile.open(archive_path, "w:gz", compresslevel=6, format=tarfile.PAX_FORMAT) if archive_path else None
    try:
        for (relpath, path, info), member in zip(entries, members):
            mode = stat.S_IMODE(info.st_mode)
            item = tarfile.TarInfo(relpath)
            item.mode, item.mtime = mode, int(info.st_mtime)
            if member.kind == "symlink":
                target = member.linkname.encode("utf-8", "surrogateescape")
                digest.begin(relpath, "symlink", mode, len(target))
                digest.update(target)
                item.type, item.linkname = tarfile.SYMTYPE, member.linkname
                if tar:
                    tar.addfile(item)
            elif member.kind == "dir":
                digest.begin(relpath, "dir", mode, 0)
                item.type = tarfile.DIRTYPE
                if tar:
                    tar.addfile(item)
            else:
                files += 1
                item.size = info.st_size
                digest.begin(relpath, "file", mode, info.st_size)
                with open(path, "rb") as handle:
                    reader = _HashingReader(handle, digest)
                    if tar:
                        tar.addfile(item, reader)
                    else:
                        while reader.read(CHUNK):
                            pass
    finally:
        if tar:
            tar.close()
    return Packed(digest.hexdigest(), files)


def _member_kind(info):
    if info.isreg():
        return "file"
    if info.isdir():
        return "dir"
    if info.issym():
        return "symlink"
    if info.islnk():
        return "hard link"
    if info.isfifo():
        return "fifo"
    return "device"


def _extract_filter():
    # Python versions with extraction filters warn without one. "tar" keeps the
    # modes (less setuid and group/other write); check_members already did the
    # stricter checks of "data", which would also drop folder modes.
    return {"filter": "tar"} if hasattr(tarfile, "tar_filter") else {}


def extract(archive, folder):
    """Check every member of the tar.gz archive, then extract it into folder; return its content digest."""
    with tarfile.open(archive, "r:gz") as tar:
        members = tar.getmembers()
        check_members([Member(m.name, _member_kind(m), m.linkname) for m in members])
        digest = ContentDigest()
        for info in sorted(members, key=lambda m: posixpath.normpath(m.name)):
            kind = _member_kind(info)
            name = posixpath.normpath(info.name)
            if kind == "symlink":
                target = info.linkname.encode("utf-8", "surrogateescape")
                digest.begin(name, kind, info.mode, len(target))
                digest.update(target)
            elif kind == "dir":
                digest.begin(name, kind, info.mode, 0)
            else:
                digest.begin(name, kind, info.mode, info.size)
                handle = tar.extractfile(info)
                for data in iter(lambda: handle.read(CHUNK), b""):
                    digest.update(data)
            # The files belong to whoever runs the module, never to the controller's uid.
            info.uid, info.gid, info.uname, info.gname = os.geteuid(), os.getegid(), "", ""
        tar.extractall(folder, members=members, **_extract_filter())
    return digest.hexdigest()


def write_text(path, text, mode=0o644):
    """Write text to path atomically: readers see the old or the new file, never part of one."""
    handle, temp = tempfile.mkstemp(prefix=".%s-" % os.path.basename(path), dir=os.path.dirname(path))
    try:
        os.fchmod(handle, mode)
        with os.fdopen(handle, "w", encoding="utf-8") as stream:
            stream.write(text)
        os.replace(temp, path)
    except BaseException:
        if os.path.lexists(temp):
            os.unlink(temp)
        raise


def read_text(path):
    """The file's text, or None when it does not exist."""
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as stream:
            return stream.read()
    except (IOError, OSError) as exc:
        if exc.errno == errno.ENOENT:
            return None
        raise


def current_release(root):
    """The id ROOT/current points at ('' when it is not a symlink)."""
    link = os.path.join(root, CURRENT)
    if not os.path.islink(link):
        return ""
    return os.path.basename(os.path.normpath(os.readlink(link)))


def points_at(root, release_id):
    """True when ROOT/current is a symlink that resolves to the release folder, whatever the form of its target."""
    link = os.path.join(root, CURRENT)
    return os.path.islink(link) and os.path.realpath(link) == os.path.realpath(os.path.join(root, RELEASES, release_id))


def switch_current(root, release_id):
    """Point ROOT/current at releases/<id> (relative, so the root may move) by renaming a new link over it."""
    link = os.path.join(root, CURRENT)
    if os.path.lexists(link) and not os.path.islink(link):
        raise ReleaseError("%s exists and is not a symlink; move it away first" % link)
    temp = os.path.join(root, ".%s-%d-%s" % (CURRENT, os.getpid(), os.urandom(4).hex()))
    os.symlink(posixpath.join(RELEASES, release_id), temp)
    try:
        os.replace(temp, link)
    except BaseException:
        os.unlink(temp)
        raise


def unpack(archive, releases_dir, release_id, digest, env_text):
    """Extract the archive into a sibling temp folder with release.env and the marker, then rename it into place.

    The rename is the commit: a run cut off before it leaves no release
    folder, so the next run unpacks again.
    """
    if not os.path.isdir(releases_dir):
        os.makedirs(releases_dir, mode=0o755)
    staging = tempfile.mkdtemp(prefix=".unpack-%s-" % release_id, dir=releases_dir)
    try:
        try:
            found = extract(archive, staging)
        except (tarfile.TarError, EOFError, zlib.error) as exc:
            raise ReleaseError("archive %s of release %s cannot be unpacked: %s" % (archive, release_id, exc))
        if digest and found != digest:
            raise ReleaseError("the archive received for release %s has digest %s, not %s as packed; "
                               "it was damaged on the way, run again" % (release_id, found, digest))
        if env_text is not None:
            write_text(os.path.join(staging, ENV_FILE), env_text)
        write_text(os.path.join(staging, MARKER), found + "\n")
        os.chmod(staging, 0o755)
        os.rename(staging, os.path.join(releases_dir, release_id))
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return found


def _summary(result, state):
    done = []
    verb = (lambda now, would: would) if result["check_mode"] else (lambda now, would: now)
    if result["unpacked"]:
        done.append(verb("unpacked", "would unpack") + " release %s into %s" % (result["release"], result["path"]))
    if result["env_changed"]:
        done.append(verb("wrote", "would write") + " its %s" % ENV_FILE)
    if result["switched"]:
        done.append(verb("switched", "would switch") + " current from %s to %s" % (
            result["previous"] or "(none)", result["release"]))
    if not done:
        what = "release %s is current" % result["release"] if state == "current" else "release %s is present" % result["release"]
        return "%s, nothing to do" % what
    return ", ".join(done)


def _listing(releases_dir, shown=10):
    """The release ids in releases_dir for a message, at most `shown` of them so the message stays one short line."""
    known = sorted(name for name in os.listdir(releases_dir) if RELEASE_ID.fullmatch(name)) \
        if os.path.isdir(releases_dir) else []
    if len(known) > shown:
        return "%s and %d more" % (", ".join(known[:shown]), len(known) - shown)
    return ", ".join(known) or "none"


def apply_release(root, release_id, state="current", env=None, archive=None, digest=None, check_mode=False):
    """Make ROOT/releases/<id> exist (unpacking archive when needed), write its release.env, switch current.

    Returns (result dict, warnings). Nothing is written in check mode; the
    result says what would change. digest is the packed content's digest
    (None when no source was given: switch only); archive is the packed
    tar.gz on this host (None in check mode).
    """
    check_release_id(release_id)
    env_text = render_env(release_id, env) if env is not None else None
    root = os.path.abspath(root)
    releases_dir = os.path.join(root, RELEASES)
    path = os.path.join(releases_dir, release_id)
    marker = os.path.join(path, MARKER)
    link = os.path.join(root, CURRENT)
    warnings = []
    if state == "current" and os.path.lexists(link) and not os.path.islink(link):
        raise ReleaseError("%s exists and is not a symlink; move it away first" % link)
    previous = current_release(root)
    result = dict(release=release_id, previous=previous, current=previous, path=path, unpacked=False,
                  env_changed=False, switched=False, digest="", check_mode=check_mode)

    if os.path.isdir(path):
        recorded = read_text(marker)
        recorded = recorded.strip() if recorded is not None else None
        if digest and recorded is None:
            raise ReleaseError("release %s already exists in %s without a %s marker (not unpacked by app_release); "
                               "give the new code a new release id" % (release_id, releases_dir, MARKER))
        if digest and DIGEST.fullmatch(recorded) and recorded != digest:
            raise ReleaseError("release %s already exists in %s with different content; give the new code a new release id"
                               % (release_id, releases_dir))
        if digest and not DIGEST.fullmatch(recorded):
            warnings.append("release %s was unpacked before app_release recorded content digests; its content was not "
                            "compared with src" % release_id)
        result["digest"] = recorded if recorded and DIGEST.fullmatch(recorded) else ""
        if env_text is not None and read_text(os.path.join(path, ENV_FILE)) != env_text:
            result["env_changed"] = True
            if not check_mode:
                write_text(os.path.join(path, ENV_FILE), env_text)
    elif not digest:
        raise ReleaseError("release folder %s does not exist (releases there: %s); give src to unpack it"
                           % (path, _listing(releases_dir)))
    else:
        if not check_mode:
            if not archive:
                raise ConfigurationError("no archive of release %s reached the host; run app_release through its "
                                         "action plugin (src is read on the controller)" % release_id)
            unpack(archive, releases_dir, release_id, digest, env_text)
        result.update(unpacked=True, env_changed=env_text is not None, digest=digest)

    if state == "current":
        result["current"] = release_id
        if not points_at(root, release_id):
            result["switched"] = True
            if not check_mode:
                switch_current(root, release_id)
    result["changed"] = result["unpacked"] or result["env_changed"] or result["switched"]
    result["msg"] = _summary(result, state)
    del result["check_mode"]
    return result, warnings
