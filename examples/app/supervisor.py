"""supervisord configuration for the demo app and its cache worker.

    supervisor.py secrets --file DIR/secrets.env    # DATABASE_URL, JWT_SECRET from the environment, mode 0600
    supervisor.py write --root DIR --secrets DIR/secrets.env [--port 3000] [--host 127.0.0.1]
    supervisord -c DIR/supervisord.conf
    supervisorctl -c DIR/supervisord.conf status | start all | stop all | restart slogate-app
    supervisorctl -c DIR/supervisord.conf shutdown

Two programs, both started from DIR/current through launch.py, which reads
the release's release.env and the secrets file at every start: after
`release.py switch`, `supervisorctl restart all` runs the new release.
Everything supervisord owns (socket, pid file, logs) stays under DIR/run
and DIR/logs; the control socket is private to the owner (0700).

`write` prints `written PATH` or `unchanged PATH`, so a playbook can tell.
"""

import argparse
import os
import shlex
import sys

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))

from demoapp.envfile import EnvFileError, write_env_file  # noqa: E402

APP_PROGRAM = "slogate-app"
WORKER_PROGRAM = "slogate-cache-worker"
SECRET_VARIABLES = ("DATABASE_URL", "JWT_SECRET")
OPTIONAL_SECRET_VARIABLES = ("CACHE_WORKER_DATABASE_URL",)

TEMPLATE = """\
; Written by examples/app/supervisor.py; regenerate rather than edit.
[unix_http_server]
file={run}/supervisor.sock
chmod=0700

[supervisord]
logfile={logs}/supervisord.log
pidfile={run}/supervisord.pid
childlogdir={logs}
identifier=slogate-demo
umask=022

[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface

[supervisorctl]
serverurl=unix://{run}/supervisor.sock

[program:{app_program}]
command={app_command}
directory={root}
environment=HOST="{host}",PORT="{port}"
autostart=true
autorestart=true
startsecs=2
startretries=3
; uvicorn drains requests for up to 10 s and the app flushes its metrics rows on SIGTERM
stopsignal=TERM
stopwaitsecs=20
stopasgroup=true
killasgroup=true
redirect_stderr=true
stdout_logfile={logs}/app.log
stdout_logfile_maxbytes=10MB
stdout_logfile_backups=3

[program:{worker_program}]
command={worker_command}
directory={root}
autostart=true
autorestart=true
startsecs=2
startretries=3
stopsignal=TERM
stopwaitsecs=20
stopasgroup=true
killasgroup=true
redirect_stderr=true
stdout_logfile={logs}/cache-worker.log
stdout_logfile_maxbytes=10MB
stdout_logfile_backups=3
"""


class SupervisorError(Exception):
    """One line for the user."""


def _ini(text):
    # supervisord expands %(name)s in values: a literal % must be doubled.
    if any(c in text for c in "\n\r;"):
        raise SupervisorError("path %r cannot go into supervisord.conf (newline or ';')" % text)
    return text.replace("%", "%%")


def render(root, secrets_file, port=3000, host="127.0.0.1", python=sys.executable):
    root = os.path.abspath(root)
    secrets_file = os.path.abspath(secrets_file)
    launcher = os.path.join(root, "current", "launch.py")

    def command(program):
        return _ini(" ".join(shlex.quote(part) for part in (python, launcher, program, "--secrets", secrets_file)))

    if not 1 <= int(port) <= 65535:
        raise SupervisorError("port must be 1..65535, got %r" % port)
    if not host or any(c in host for c in '"%,\n '):
        raise SupervisorError("bad host %r" % host)
    return TEMPLATE.format(root=_ini(root), run=_ini(os.path.join(root, "run")), logs=_ini(os.path.join(root, "logs")),
                           app_program=APP_PROGRAM, worker_program=WORKER_PROGRAM, host=host, port=int(port),
                           app_command=command("app"), worker_command=command("cache-worker"))


def write_config(root, secrets_file, conf=None, **options):
    """Write DIR/supervisord.conf (or `conf`); True when its content changed."""
    conf = conf or os.path.join(root, "supervisord.conf")
    text = render(root, secrets_file, **options)
    for folder in ("run", "logs"):
        os.makedirs(os.path.join(root, folder), mode=0o750, exist_ok=True)
    if os.path.exists(conf):
        with open(conf, encoding="utf-8") as handle:
            if handle.read() == text:
                return False
    temp = conf + ".tmp"
    with open(temp, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(temp, conf)
    return True


def write_secrets(path, env):
    """The secrets env file (mode 0600) from the variables in `env`; never from the command line."""
    missing = [name for name in SECRET_VARIABLES if not env.get(name)]
    if missing:
        raise SupervisorError("set %s in the environment first" % " and ".join(missing))
    values = {name: env[name] for name in SECRET_VARIABLES + OPTIONAL_SECRET_VARIABLES if env.get(name)}
    write_env_file(path, values, mode=0o600)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="supervisor.py", description="supervisord set-up for the demo app")
    commands = parser.add_subparsers(dest="command", required=True)
    write = commands.add_parser("write", help="write ROOT/supervisord.conf")
    write.add_argument("--root", required=True)
    write.add_argument("--secrets", required=True, help="env file with DATABASE_URL and JWT_SECRET (mode 0600)")
    write.add_argument("--conf", help="where to write (default ROOT/supervisord.conf)")
    write.add_argument("--port", type=int, default=3000)
    write.add_argument("--host", default="127.0.0.1")
    write.add_argument("--python", default=sys.executable, help="interpreter with the app's packages")
    secrets = commands.add_parser("secrets", help="write the secrets env file from DATABASE_URL and JWT_SECRET")
    secrets.add_argument("--file", required=True)
    args = parser.parse_args(argv)
    try:
        if args.command == "secrets":
            write_secrets(args.file, os.environ)
            print("written %s" % args.file)
            return 0
        conf = args.conf or os.path.join(os.path.abspath(args.root), "supervisord.conf")
        changed = write_config(args.root, args.secrets, conf, port=args.port, host=args.host, python=args.python)
        print("%s %s" % ("written" if changed else "unchanged", conf))
    except (SupervisorError, EnvFileError, OSError) as exc:
        sys.stderr.write("supervisor.py: error: %s\n" % exc)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
