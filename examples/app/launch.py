"""Start one program of a release with that release's settings, then become it.

    python ROOT/current/launch.py app [--secrets FILE]
    python ROOT/current/launch.py cache-worker [--secrets FILE]

The release is the folder this file is in, resolved once at start (so
ROOT/current picks the release at each restart, and a switch never changes a
running process). Settings, later ones winning: the process environment, the
secrets file (DATABASE_URL, JWT_SECRET), the release's release.env
(RELEASE_ID and the faults). The process then exec()s uvicorn or the cache
worker, so the process manager's signals reach it directly.
"""

import argparse
import os
import sys

RELEASE_DIR = os.path.dirname(os.path.realpath(__file__))
sys.path.insert(0, RELEASE_DIR)

from demoapp.config import ConfigError, Settings  # noqa: E402
from demoapp.envfile import EnvFileError, read_env_file  # noqa: E402

RELEASE_ENV = "release.env"
PROGRAMS = ("app", "cache-worker")


def release_environment(secrets_file=None, base=None):
    env = dict(os.environ if base is None else base)
    if secrets_file:
        env.update(read_env_file(secrets_file))
    release_env = os.path.join(RELEASE_DIR, RELEASE_ENV)
    if os.path.exists(release_env):
        env.update(read_env_file(release_env))
    return env


def port_of(env):
    text = env.get("PORT", "").strip() or "3000"
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise ConfigError("PORT must be 1..65535, got %r" % text)
    return text


def app_command(env):
    Settings.from_env(env)  # refuse bad settings here, in one line, before uvicorn prints a traceback
    command = [sys.executable, "-m", "uvicorn", "--factory", "demoapp.web:create_app", "--app-dir", RELEASE_DIR,
               "--host", env.get("HOST", "").strip() or "127.0.0.1", "--port", port_of(env), "--workers", "1",
               "--timeout-graceful-shutdown", "10", "--log-level", env.get("LOG_LEVEL", "info").strip().lower() or "info"]
    if env.get("ACCESS_LOG", "").strip().lower() not in ("1", "true", "yes", "on"):
        command.append("--no-access-log")  # a line per request would cost more than the request under load
    return command


def worker_command(env):
    return [sys.executable, os.path.join(RELEASE_DIR, "cache_worker.py")]


def main(argv=None):
    parser = argparse.ArgumentParser(prog="launch.py", description=__doc__.split("\n\n", maxsplit=1)[0])
    parser.add_argument("program", choices=PROGRAMS)
    parser.add_argument("--secrets", help="env file with DATABASE_URL and JWT_SECRET (mode 0600)")
    args = parser.parse_args(argv)
    try:
        env = release_environment(args.secrets)
        command = app_command(env) if args.program == "app" else worker_command(env)
    except (ConfigError, EnvFileError, OSError) as exc:
        sys.stderr.write("launch.py: error: %s\n" % exc)
        return 2
    os.chdir(RELEASE_DIR)
    os.execve(command[0], command, env)
    return 0  # not reached: execve replaced this process


if __name__ == "__main__":
    sys.exit(main())
