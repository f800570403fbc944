# -*- coding: utf-8 -*-
# Copyright: slogate.supabase contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Programs whose output is too big to hold in memory: streamed into a file while it is hashed, or piped into a
second program; and the sha256 of a file read the same way. AnsibleModule.run_command keeps all of a program's
output in memory and runs one program at a time.

No Ansible import. stderr goes to files, so no pipe can fill up and stall a program.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import os
import subprocess

CHUNK = 4 * 1024 * 1024


class WriteFailure(Exception):
    """The output file could not be written; the program was killed."""

    def __init__(self, error):
        super(WriteFailure, self).__init__(error.strerror)
        self.error = error


def capture_to_file(argv, path, env, stderr_path):
    """Run argv, writing its stdout to the new file ``path`` (mode 0600, synced to disk) and hashing it on the way.

    Returns (exit code, size, sha256 hex). Raises WriteFailure, after killing the program, when ``path`` cannot be
    created or written (a full disk).
    """
    digest, size = hashlib.sha256(), 0
    with open(stderr_path, "wb") as log:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, env=env)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as target:
                while True:
                    block = proc.stdout.read1(CHUNK)
                    if not block:
                        break
                    digest.update(block)
                    size += len(block)
                    target.write(block)
                target.flush()
                os.fsync(target.fileno())
        except OSError as exc:
            proc.kill()
            raise WriteFailure(exc)
        finally:
            proc.stdout.close()
            code = proc.wait()
    return code, size, digest.hexdigest()


def sha256_of(path):
    """(size, sha256 hex) of a file, read a chunk at a time."""
    digest, size = hashlib.sha256(), 0
    with open(path, "rb") as handle:
        while True:
            block = handle.read(CHUNK)
            if not block:
                break
            size += len(block)
            digest.update(block)
    return size, digest.hexdigest()


def pipe(producer, consumer, env, stderr_paths):
    """Run producer | consumer; returns (producer's exit code, consumer's exit code).

    The consumer holds the only reading end of the pipe, so a consumer that stops makes the producer stop too.
    """
    with open(stderr_paths[0], "wb") as producer_log, open(stderr_paths[1], "wb") as consumer_log:
        first = subprocess.Popen(producer, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=producer_log, env=env)
        try:
            second = subprocess.Popen(consumer, stdin=first.stdout, stdout=subprocess.DEVNULL, stderr=consumer_log,
                                      env=env)
        except OSError:
            first.kill()
            first.wait()
            raise
        finally:
            first.stdout.close()
        consumer_code = second.wait()
        return first.wait(), consumer_code
