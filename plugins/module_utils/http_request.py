# -*- coding: utf-8 -*-
# Copyright: slogate.supabase contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one HTTP helper of slogate.supabase: send one request with Ansible's
``urls.Request``, as ``open_url`` does (with the TLS context built once), and
say what came back, as plain data.

HTTP trouble never raises here. An answer with a status of 400 or more (which
urllib raises) is an answer like any other, with its status, headers and body;
a request that got no answer (refused, timed out, TLS, DNS) has no status and a
one-line ``error``. Deciding what counts as a failure is the caller's business
(``cache.shape_url`` for cache_warm, ``http_probe.shape_probe`` for http_probe).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import http.client
import inspect
import socket
import threading
import time
import urllib.error
from dataclasses import dataclass, field
from typing import Optional, Tuple

from ansible.module_utils.urls import ConnectionError as UrlConnectionError
from ansible.module_utils.urls import Request, SSLValidationError

from ansible_collections.slogate.supabase.plugins.module_utils.cache import describe_url_failure

try:
    from ansible.module_utils.urls import make_context
except ImportError:  # an older ansible-core builds the context inside Request.open only
    make_context = None

CHUNK_BYTES = 65536

# open_url builds a TLS context, loading the system's CA certificates, for every request, http:// too: about 40 ms
# each here, more than a local answer takes. Request.open takes a context built once instead, where it can.
_REUSE_CONTEXT = make_context is not None and "context" in inspect.signature(Request.open).parameters


@dataclass(frozen=True)
class Answer:
    """What one request got.

    ``status`` is None when no answer came, and ``error`` then says why in one line.
    ``raised`` is true when urllib raised the answer as an HTTPError (a status of 400 or more,
    or a redirect that was not followed). ``headers`` are (lower-cased name, value) pairs;
    ``body`` is the first ``keep_bytes`` bytes of the body, ``size`` the bytes of the whole body.
    """

    status: Optional[int] = None
    reason: str = ""
    headers: Tuple[Tuple[str, str], ...] = ()
    body: bytes = field(default=b"", repr=False)
    size: int = 0
    error: Optional[str] = None
    raised: bool = False
    duration_ms: float = 0.0


def _read(response, keep_bytes):
    """Read the whole body; return (its first keep_bytes bytes, its size)."""
    kept, size = [], 0
    if response is None:
        return b"", 0
    chunk = response.read(CHUNK_BYTES)
    while chunk:
        if size < keep_bytes:
            kept.append(chunk[:keep_bytes - size])
        size += len(chunk)
        chunk = response.read(CHUNK_BYTES)
    return b"".join(kept), size


def _headers(message):
    if message is None:
        return ()
    return tuple((str(name).lower(), str(value)) for name, value in message.items())


_CONTEXTS = {}
_CONTEXTS_LOCK = threading.Lock()


def _tls_context(validate_certs):
    """The TLS context open_url would build, built once per process (cache_warm's threads wait for the first)."""
    with _CONTEXTS_LOCK:
        if validate_certs not in _CONTEXTS:
            _CONTEXTS[validate_certs] = make_context(validate_certs=validate_certs)
        return _CONTEXTS[validate_certs]


def send(url, method="GET", headers=None, timeout=30.0, validate_certs=True, keep_bytes=0, http_agent=None,
         use_netrc=True):
    """Send one request, as open_url does, and read the whole answer; never raises for HTTP trouble.

    Redirects are followed for GET and HEAD only (``safe``), and ``headers`` are not sent again after
    a redirect, so a token never follows one to another host. Each request has a cookie jar of its own.
    """
    headers = dict(headers or {})
    started = time.monotonic()
    status, reason, answer_headers, body, size, error, raised = None, "", (), b"", 0, None, False
    try:
        extra = dict(context=_tls_context(bool(validate_certs))) if _REUSE_CONTEXT else {}
        response = Request().open(method, url, headers=headers, timeout=timeout, validate_certs=validate_certs,
                                  follow_redirects="safe", unredirected_headers=list(headers), http_agent=http_agent,
                                  use_netrc=use_netrc, **extra)
        try:
            status, reason, answer_headers = response.getcode(), str(getattr(response, "reason", "") or ""), _headers(response.headers)
            body, size = _read(response, keep_bytes)
        finally:
            response.close()
    except urllib.error.HTTPError as exc:
        status, reason, answer_headers, raised = exc.code, str(exc.reason or ""), _headers(exc.headers), True
        try:
            body, size = _read(exc if exc.fp is not None else None, keep_bytes)
        except (http.client.HTTPException, OSError):
            pass   # the status came; a body cut short does not change it
        finally:
            exc.close()
    except urllib.error.URLError as exc:
        timed_out = isinstance(exc.reason, (socket.timeout, TimeoutError))
        error = describe_url_failure(reason=exc.reason, timed_out=timed_out, timeout=timeout)
    except (socket.timeout, TimeoutError):
        error = describe_url_failure(timed_out=True, timeout=timeout)
    except (http.client.HTTPException, OSError, ValueError, UrlConnectionError, SSLValidationError) as exc:
        error = describe_url_failure(reason="%s: %s" % (type(exc).__name__, exc))
    return Answer(status=status, reason=reason, headers=answer_headers, body=body, size=size, error=error,
                  raised=raised, duration_ms=1000.0 * (time.monotonic() - started))
