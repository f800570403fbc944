"""Settings from environment variables, checked once at start-up.

A bad value stops the app with one line naming the variable; a secret's value
is never part of that line.
"""

from dataclasses import dataclass

TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("", "0", "false", "no", "off")
MIN_JWT_SECRET_LENGTH = 32  # HS256 keys shorter than its 32-byte digest are weak (RFC 7518 3.2)


class ConfigError(ValueError):
    """A missing or bad setting, as one line."""


def _number(env, name, default, kind, low=None, high=None):
    text = env.get(name, "").strip()
    if text == "":
        return default
    try:
        value = kind(text)
    except ValueError:
        raise ConfigError("%s must be a %s, got %r" % (name, "whole number" if kind is int else "number", text)) from None
    if (low is not None and value < low) or (high is not None and value > high):
        bounds = "%s..%s" % ("" if low is None else low, "" if high is None else high)
        raise ConfigError("%s must be in %s, got %r" % (name, bounds, text))
    return value


def _flag(env, name):
    text = env.get(name, "").strip().lower()
    if text in TRUE_WORDS:
        return True
    if text in FALSE_WORDS:
        return False
    raise ConfigError("%s must be true or false, got %r" % (name, text))


@dataclass(frozen=True)
class Faults:
    """Deliberate damage a bad release carries; each one moves one SLO."""
    error_rate: float = 0.0     # share (0..1) of /api/search requests that answer 500: err_rate
    latency_ms: int = 0         # extra wait on every /api/search request: p95/p99
    cache_bypass: bool = False  # search never reads or writes the cache: cache hit rate
    admin_open: bool = False    # admin endpoints serve a regular user with the service role: the smoke test's "403 leak"

    @classmethod
    def from_env(cls, env):
        return cls(error_rate=_number(env, "FAULT_ERROR_RATE", 0.0, float, 0.0, 1.0),
                   latency_ms=_number(env, "FAULT_LATENCY_MS", 0, int, 0, 600000),
                   cache_bypass=_flag(env, "FAULT_CACHE_BYPASS"),
                   admin_open=_flag(env, "FAULT_ADMIN_OPEN"))

    def as_env(self):
        return {"FAULT_ERROR_RATE": repr(self.error_rate), "FAULT_LATENCY_MS": str(self.latency_ms),
                "FAULT_CACHE_BYPASS": "true" if self.cache_bypass else "false",
                "FAULT_ADMIN_OPEN": "true" if self.admin_open else "false"}


@dataclass(frozen=True)
class Settings:
    database_url: str
    jwt_secret: str
    release_id: str = "dev"
    faults: Faults = Faults()
    pool_min_size: int = 2
    pool_max_size: int = 10
    pool_timeout_seconds: float = 5.0
    health_timeout_seconds: float = 2.0
    metrics_flush_ms: int = 200
    metrics_batch_rows: int = 100
    metrics_max_buffer: int = 50000
    cache_ttl_seconds: int = 900
    admin_rate_limit: int = 30
    admin_rate_window_seconds: float = 60.0

    def __repr__(self):  # a Settings in a log line or traceback must not show the secrets
        return "Settings(release_id=%r, faults=%r)" % (self.release_id, self.faults)

    @classmethod
    def from_env(cls, env):
        database_url = env.get("DATABASE_URL", "").strip()
        if not database_url:
            raise ConfigError("DATABASE_URL is not set")
        jwt_secret = env.get("JWT_SECRET", "")
        if len(jwt_secret) < MIN_JWT_SECRET_LENGTH:
            raise ConfigError("JWT_SECRET must be set, at least %d characters" % MIN_JWT_SECRET_LENGTH)
        pool_min = _number(env, "DB_POOL_MIN_SIZE", 2, int, 0, 1000)
        return cls(
            database_url=database_url,
            jwt_secret=jwt_secret,
            release_id=env.get("RELEASE_ID", "").strip() or "dev",
            faults=Faults.from_env(env),
            pool_min_size=pool_min,
            pool_max_size=_number(env, "DB_POOL_MAX_SIZE", max(10, pool_min), int, max(1, pool_min), 1000),
            pool_timeout_seconds=_number(env, "DB_POOL_TIMEOUT_SECONDS", 5.0, float, 0.1, 600),
            health_timeout_seconds=_number(env, "HEALTH_DB_TIMEOUT_SECONDS", 2.0, float, 0.1, 600),
            metrics_flush_ms=_number(env, "METRICS_FLUSH_MS", 200, int, 10, 3600000),
            metrics_batch_rows=_number(env, "METRICS_BATCH_ROWS", 100, int, 1, 1000000),
            metrics_max_buffer=_number(env, "METRICS_MAX_BUFFER", 50000, int, 1, 10000000),
            cache_ttl_seconds=_number(env, "CACHE_TTL_SECONDS", 900, int, 1, 86400 * 30),
            admin_rate_limit=_number(env, "ADMIN_RATE_LIMIT", 30, int, 1, 1000000),
            admin_rate_window_seconds=_number(env, "ADMIN_RATE_WINDOW_SECONDS", 60.0, float, 0.1, 86400),
        )
