# -*- coding: utf-8 -*-
# Copyright: slogate.supabase contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""HTTP probes (the smoke test's requests) as plain data: options checked,
the plan, each probe's answers shaped into its result, and the one-line
summary. Pure logic: no Ansible, no network, no clock.

A probe is one request, or the same request sent ``repeat`` times one after
the other (the runbook's curl loop against the rate limit). What each request
got comes in as answers (``http_request.Answer`` or anything with its attributes:
``status``, ``headers``, ``body``, ``size``, ``error``, ``duration_ms``); a
status of 400 or more is a result, not a failure. Only bad input fails, with
one line naming the option or the probe and what to do.

Token values never leave ``Options.bearer_tokens``: probes name a token, the
result says which name it used, and every URL is shown with the password of
its user info masked.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import math
import re
from dataclasses import dataclass, field
from typing import Optional, Tuple

from ansible_collections.slogate.supabase.plugins.module_utils.cache import is_http_url, is_int, redact_url, require

METHODS = ("GET", "HEAD")

# Credentials go through bearer_tokens (no_log), never through headers, which are shown at -vvv.
CREDENTIAL_HEADERS = ("authorization", "proxy-authorization", "cookie")

NO_ANSWER = "no answer"

_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")


@dataclass(frozen=True)
class Probe:
    """One probe, checked: its full URL, and the name (not the value) of the token it sends."""

    name: str
    url: str
    method: str = "GET"
    token: Optional[str] = None
    repeat: int = 1
    headers: Tuple[Tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Options:
    """The module's options, checked; probes in the order they are sent."""

    probes: Tuple[Probe, ...]
    bearer_tokens: Tuple[Tuple[str, str], ...] = field(default=(), repr=False)
    timeout: float = 10.0
    validate_certs: bool = True
    max_body_bytes: int = 65536

    @property
    def requests(self):
        """How many requests the probes send in all."""
        return sum(probe.repeat for probe in self.probes)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def join_url(base_url, path):
    """base_url and path with exactly one slash between them."""
    return "%s/%s" % (base_url.rstrip("/"), path.lstrip("/"))


def _text(value):
    return value.strip() if isinstance(value, str) else ""


def _parse_headers(label, headers):
    require(headers is None or isinstance(headers, dict), "%s: headers must be a dict of header names to values" % label)
    parsed = []
    for name, value in (headers or {}).items():
        require(isinstance(name, str) and _HEADER_NAME.match(name), "%s: %r is not a valid HTTP header name" % (label, name))
        require(name.lower() not in CREDENTIAL_HEADERS,
                "%s: headers must not set %s (headers are shown in the task's arguments); "
                "put the token in bearer_tokens and name it with token" % (label, name))
        require(value is not None and "\n" not in str(value) and "\r" not in str(value),
                "%s: the value of header %s must be one line of text" % (label, name))
        parsed.append((name, str(value)))
    return tuple(parsed)


def _parse_url(label, item, base_url):
    url, path = _text(item.get("url")), _text(item.get("path"))
    require(not (url and path), "%s: give url or path, not both" % label)
    require(url or path, "%s: give url (an absolute URL) or path (joined to base_url)" % label)
    if url:
        require(is_http_url(url), "%s: url %s is not an http:// or https:// URL with a host" % (label, redact_url(url)))
        return url
    require("://" not in path.split("?", 1)[0], "%s: path %s is a URL; give it as url" % (label, redact_url(path)))
    require(base_url, "%s: path %s needs base_url; set base_url or give an absolute url" % (label, path))
    return join_url(base_url, path)


def _parse_token(label, token, tokens):
    if token is None or token == "":
        return None
    require(isinstance(token, str), "%s: token must be the name of an entry of bearer_tokens" % label)
    known = ", ".join(sorted(tokens)) if tokens else "none, bearer_tokens is empty"
    require(token in tokens, "%s: token %s is not a name in bearer_tokens (known: %s); add it there or fix the name"
            % (label, token, known))
    require(tokens[token] != "", "%s: bearer_tokens.%s is empty; set the token" % (label, token))
    return token


def parse_probe(position, item, base_url, tokens):
    """One probe from its option entry; raise ConfigurationError naming it."""
    require(isinstance(item, dict), "probes[%d] must be a dict with a name and a url or path" % position)
    name = _text(item.get("name"))
    require(name, "probes[%d] has no name; give every probe a unique name" % position)
    label = "probe %s" % name
    method = _text(item.get("method") or "GET").upper()
    require(method in METHODS, "%s: method %s is not supported; use %s" % (label, method, " or ".join(METHODS)))
    repeat = item.get("repeat", 1)
    repeat = 1 if repeat is None else repeat
    require(is_int(repeat) and repeat >= 1, "%s: repeat must be 1 or more, got %r" % (label, repeat))
    return Probe(name=name, url=_parse_url(label, item, base_url), method=method,
                 token=_parse_token(label, item.get("token"), tokens), repeat=repeat,
                 headers=_parse_headers(label, item.get("headers")))


def parse_options(params):
    """Options from the module's params; raise ConfigurationError naming the first bad one."""
    base_url = _text(params.get("base_url"))
    require(not base_url or is_http_url(base_url),
            "base_url %s is not an http:// or https:// URL with a host" % redact_url(base_url))
    timeout, max_body = params.get("timeout", 10.0), params.get("max_body_bytes", 65536)
    require(_is_number(timeout) and timeout > 0, "timeout must be more than 0 seconds, got %r" % (timeout,))
    require(is_int(max_body) and max_body >= 0, "max_body_bytes must be 0 or more, got %r" % (max_body,))
    raw_tokens = params.get("bearer_tokens") or {}
    require(isinstance(raw_tokens, dict), "bearer_tokens must be a dict of token names to tokens")
    tokens = {}
    for name, value in raw_tokens.items():
        value = "" if value is None else str(value).strip()
        require("\n" not in value and "\r" not in value, "bearer_tokens.%s must be one line of text" % name)
        tokens[str(name)] = value
    items = params.get("probes") or []
    require(isinstance(items, list) and items, "probes must list at least one probe")
    probes, seen = [], {}
    for position, item in enumerate(items):
        probe = parse_probe(position, item, base_url, tokens)
        require(probe.name not in seen, "probes[%d]: the name %s is already used by probes[%d]; give every probe a unique name"
                % (position, probe.name, seen.get(probe.name, -1)))
        seen[probe.name] = position
        probes.append(probe)
    used = sorted({probe.token for probe in probes if probe.token})
    return Options(probes=tuple(probes), bearer_tokens=tuple((name, tokens[name]) for name in used), timeout=float(timeout),
                   validate_certs=bool(params.get("validate_certs", True)), max_body_bytes=max_body)


def request_headers(probe, options):
    """The headers a probe's requests carry: its own, and its bearer token as Authorization."""
    headers = dict(probe.headers)
    if probe.token:
        headers["Authorization"] = "Bearer %s" % dict(options.bearer_tokens)[probe.token]
    return headers


# --- results -------------------------------------------------------------------------------


def _ms(value):
    return None if value is None else round(float(value), 1)


def _header(answer, name):
    """The last value of a response header, or None."""
    found = None
    for key, value in answer.headers or ():
        if key.lower() == name:
            found = value
    return found


def _media(content_type):
    """(media type, charset) of a Content-Type header."""
    parts = [part.strip() for part in (content_type or "").split(";")]
    charset = None
    for part in parts[1:]:
        key, sep, value = part.partition("=")
        if sep and key.strip().lower() == "charset":
            charset = value.strip().strip('"') or None
    return parts[0].lower(), charset


def is_json_type(content_type):
    media, dummy = _media(content_type)
    return media == "application/json" or media.endswith("+json")


def decode_body(body, content_type):
    """Body bytes as text, in the charset the answer named (UTF-8 otherwise); undecodable bytes replaced."""
    dummy, charset = _media(content_type)
    try:
        return body.decode(charset or "utf-8", errors="replace")
    except LookupError:
        return body.decode("utf-8", errors="replace")


def read_body(body, size, content_type, max_body_bytes):
    """(json, body) of an answer: its JSON when it says it is JSON and came whole, else its text (first max_body_bytes)."""
    if body is None:
        return None, None
    text = decode_body(body[:max_body_bytes], content_type)
    if is_json_type(content_type) and size <= max_body_bytes and text.strip():
        try:
            return json.loads(text), None
        except ValueError:
            pass
    return None, text


def _error_lines(answers):
    """One line per request that went wrong, numbered when there were several."""
    lines = []
    for number, answer in enumerate(answers, 1):
        if answer.error:
            lines.append(answer.error if len(answers) == 1 else "request %d of %d: %s" % (number, len(answers), answer.error))
    return lines


def _entry(probe):
    return dict(name=probe.name, url=redact_url(probe.url), method=probe.method, token=probe.token,
                repeat=probe.repeat, statuses=[], errors=[], status=-1, error=None, json=None, body=None,
                bytes=None, retry_after=None, duration_ms=None)


def shape_probe(probe, answers, max_body_bytes=65536):
    """A probe's result from what each of its requests got, in order; the last answer is the one described."""
    answers = list(answers)
    entry = _entry(probe)
    entry.update(statuses=[answer.status for answer in answers], errors=_error_lines(answers),
                 duration_ms=_ms(sum(answer.duration_ms or 0.0 for answer in answers)))
    if answers:
        last = answers[-1]
        answered = last.status is not None
        parsed, text = read_body(last.body if answered else None, last.size, _header(last, "content-type"), max_body_bytes)
        entry.update(status=last.status if answered else -1, error=last.error, json=parsed, body=text,
                     bytes=last.size if answered else 0, retry_after=_header(last, "retry-after"))
    return entry


def plan(options):
    """Check mode: each probe as it would be sent, with nothing sent."""
    return [_entry(probe) for probe in options.probes]


def by_name(entries):
    return dict((entry["name"], entry) for entry in entries)


def summarize_statuses(statuses):
    """'200', 'no answer', or counts in order of first appearance: '30x200 5x429'."""
    statuses = list(statuses)
    if not statuses:
        return "not sent"
    label = [NO_ANSWER if status is None else str(status) for status in statuses]
    if len(label) == 1:
        return label[0]
    counts = {}
    for item in label:
        counts[item] = counts.get(item, 0) + 1
    return " ".join("%dx%s" % (count, item) if item != NO_ANSWER else "%dx %s" % (count, item)
                    for item, count in counts.items())


def _plural(count, word):
    return "%d %s%s" % (count, word, "" if count == 1 else "s")


def summarize(entries, check_mode=False):
    """One line: the requests sent (or that would be) and what each probe got."""
    requests = sum(entry["repeat"] for entry in entries)
    if check_mode:
        planned = ", ".join(entry["name"] if entry["repeat"] == 1 else "%s x%d" % (entry["name"], entry["repeat"])
                            for entry in entries)
        return "would send %s in %s: %s" % (_plural(requests, "request"), _plural(len(entries), "probe"), planned)
    line = "sent %s in %s: %s" % (_plural(requests, "request"), _plural(len(entries), "probe"),
                                  ", ".join("%s %s" % (entry["name"], summarize_statuses(entry["statuses"])) for entry in entries))
    troubles = ["%s: %s%s" % (entry["name"], entry["errors"][0], " (and %d more)" % (len(entry["errors"]) - 1)
                              if len(entry["errors"]) > 1 else "")
                for entry in entries if entry["errors"]]
    return "; ".join([line] + troubles)
