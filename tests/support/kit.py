"""Apply the kit's SQL to a test database the plain way (one transaction per file),
so the kit's own tests do not depend on the migration module."""

from pathlib import Path

import psycopg2

ROOT = Path(__file__).resolve().parents[2]
KIT_FILES = ROOT / "roles" / "kit" / "files"
BOOTSTRAP = KIT_FILES / "bootstrap.sql"
MIGRATIONS = sorted((KIT_FILES / "pack" / "migrations").glob("*.sql"))
ROLLBACKS = KIT_FILES / "pack" / "rollbacks"


def apply_sql(url, text):
    conn = psycopg2.connect(url)
    try:
        with conn, conn.cursor() as cur:
            cur.execute(text)
    finally:
        conn.close()


def apply_file(url, path):
    apply_sql(url, Path(path).read_text())


def install(url, bootstrap=True):
    if bootstrap:
        apply_file(url, BOOTSTRAP)
    for path in MIGRATIONS:
        apply_file(url, path)


def rollback_path(migration):
    return ROLLBACKS / Path(migration).name
