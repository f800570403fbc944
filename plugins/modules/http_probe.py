#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: slogate.supabase contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
module: http_probe
short_description: Send a list of HTTP probes in order and return what each got
version_added: 0.1.0
description:
  - Sends the smoke test's requests (health, an endpoint as an admin, a regular user and anonymously, the runbook's
    rate-limit loop) from one task, in the order given, and returns each probe's statuses, its last answer's JSON
    or text, and its C(Retry-After) header, so the checks can be judged from one registered result.
  - One task instead of one C(ansible.builtin.uri) task per request saves Ansible's overhead of a task per request,
    and a probe with O(probes[].repeat) sends its requests one after the other as fast as the
    runbook's C(curl) loop does.
  - An answer with a status of 400 or more, and a request that got no answer at all (refused, timed out), are
    results, not failures. The task fails only on bad input, with one line naming the option or the probe and what
    to do.
  - Bearer tokens are given once, in O(bearer_tokens) (never logged), and named by the probes that send them.
    No token value is ever in the result, the message or the task's arguments shown at C(-vvv).
extends_documentation_fragment:
  - slogate.supabase.in_worker
options:
  base_url:
    description:
      - Prefix of the probes' O(probes[].path), for example V(https://app.example.com).
      - An C(http://) or C(https://) URL with a host. A password in its user info is masked in the result.
    type: str
  probes:
    description:
      - The probes, sent in this order. Each sends O(probes[].repeat) requests one after the other.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description:
          - Name of the probe, unique among the probes; the key of the probe in RV(by_name).
        type: str
        required: true
      url:
        description:
          - Absolute C(http://) or C(https://) URL of the request.
          - Give O(probes[].url) or O(probes[].path), not both.
        type: str
      path:
        description:
          - Path (and query) of the request, joined to O(base_url) with one C(/).
        type: str
      method:
        description:
          - HTTP method. Probes read; C(HEAD) asks for the headers only.
        type: str
        choices: [GET, HEAD]
        default: GET
      token:
        description:
          - Name of an entry of O(bearer_tokens), sent as C(Authorization) C(Bearer) with every request of the probe.
          - Without it the probe sends no C(Authorization) header.
          - A name that O(bearer_tokens) does not have fails the task, listing the names it has (never the tokens).
        type: str
      repeat:
        description:
          - Send the request this many times (1 or more), one after the other, each as soon as the one before was
            answered, for example the runbook's rate-limit loop of 35 requests.
        type: int
        default: 1
      headers:
        description:
          - Headers sent with every request of the probe. They are not secret and are shown in the task's arguments
            at C(-vvv); C(Authorization), C(Proxy-Authorization) and C(Cookie) are refused, use O(probes[].token).
          - Not sent again when an answer redirects.
        type: dict
        default: {}
  bearer_tokens:
    description:
      - Bearer tokens by name, for O(probes[].token), for example C(admin) and C(user).
      - Never logged and never in the result; a token is not sent again when an answer redirects, so it never follows
        a redirect to another host.
    type: dict
    default: {}
  timeout:
    description:
      - Seconds one request may take, connection and answer together.
    type: float
    default: 10
  validate_certs:
    description:
      - Verify the TLS certificate of C(https://) URLs.
    type: bool
    default: true
  max_body_bytes:
    description:
      - How many bytes of the last answer's body each probe returns, as RV(probes[].json) or RV(probes[].body).
      - A JSON body longer than this is returned as truncated text in RV(probes[].body), not parsed.
    type: int
    default: 65536
attributes:
  check_mode:
    description: Can run in check_mode and return changed status prediction without modifying target.
    support: full
    details:
      - Nothing is sent. RV(probes) lists the requests that would be sent, with empty RV(probes[].statuses).
  diff_mode:
    description: Will return details on what has changed (or possibly needs changing in check_mode), when in diff mode.
    support: none
notes:
  - C(changed) is always false; probes only read. Use C(failed_when) or M(ansible.builtin.assert) on the result to
    judge the answers.
  - Redirects are followed for C(GET) and C(HEAD); the statuses are those of the final answers.
  - C(~/.netrc) is not read, so a probe without O(probes[].token) is sent without credentials. Cookies an answer
    sets are not sent with later requests.
seealso:
  - module: ansible.builtin.uri
  - module: slogate.supabase.cache_warm
author:
  - slogate.supabase developers (@slogate)
"""

EXAMPLES = r"""
- name: Probe the app's health and an admin endpoint as an admin, a regular user and without a token
  slogate.supabase.http_probe:
    base_url: https://app.example.com
    bearer_tokens:
      admin: "{{ vault_admin_token }}"
      user: "{{ vault_user_token }}"
    probes:
      - name: health
        path: /api/health
      - name: admin
        path: /api/admin/performance
        token: admin
      - name: user
        path: /api/admin/performance
        token: user
      - name: anonymous
        path: /api/admin/performance
  register: smoke_probes

- name: Admins get in, a regular user gets a generic 403, no token gets 401
  ansible.builtin.assert:
    that:
      - smoke_probes.by_name.health.status == 200
      - smoke_probes.by_name.admin.status == 200
      - smoke_probes.by_name.user.status == 403
      - "smoke_probes.by_name.user.json == {'error': 'forbidden'}"
      - smoke_probes.by_name.anonymous.status == 401
    quiet: true

- name: The runbook's rate-limit loop, 35 requests as fast as curl, then one more that must say when to retry
  slogate.supabase.http_probe:
    bearer_tokens:
      rate_limit: "{{ vault_rate_limit_token }}"
    probes:
      - name: loop
        url: https://app.example.com/api/admin/performance
        token: rate_limit
        repeat: 35
      - name: limited
        url: https://app.example.com/api/admin/performance
        token: rate_limit
    timeout: 5
  register: smoke_rate_limit

- name: 30 requests a minute get through, the rest get 429 with Retry-After
  ansible.builtin.assert:
    that:
      - smoke_rate_limit.by_name.loop.statuses[:30] | unique == [200]
      - smoke_rate_limit.by_name.loop.statuses[30:] | unique == [429]
      - smoke_rate_limit.by_name.limited.status == 429
      - smoke_rate_limit.by_name.limited.retry_after is not none
    quiet: true

- name: What would be sent?
  slogate.supabase.http_probe:
    base_url: https://app.example.com
    probes:
      - name: health
        path: /api/health
        method: HEAD
  check_mode: true
"""

RETURN = r"""
msg:
  description: >-
    One line: the requests sent and what each probe got (counts per status for a repeated probe), then why each probe
    that got no answer got none. In check mode, the requests that would be sent.
  returned: always
  type: str
  sample: "sent 41 requests in 7 probes: health 200, admin_performance 200, audit_log 200, user_performance 403,
    anonymous_performance 401, rate_limit 30x200 5x429, rate_limited 429"
requests:
  description: Requests sent (in check mode, that would be sent).
  returned: always
  type: int
  sample: 41
duration_ms:
  description: Time of all requests together; null in check mode.
  returned: always
  type: float
  sample: 184.2
probes:
  description: Each probe in the order given.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: O(probes[].name).
      type: str
      sample: health
    url:
      description: The URL requested, a password of its user info masked.
      type: str
      sample: https://app.example.com/api/health
    method:
      description: The HTTP method.
      type: str
      sample: GET
    token:
      description: The name of the token sent (never its value), or null.
      type: str
      sample: admin
    repeat:
      description: Requests of the probe.
      type: int
      sample: 1
    statuses:
      description: >-
        The status of each request, in order; null for a request that got no answer. Empty in check mode.
      type: list
      elements: int
      sample: [200, 200, 429]
    errors:
      description: >-
        One line for each request that got no answer (or whose body was cut short): C(timed out after 10 s),
        C([Errno 111] Connection refused), ...; numbered C(request 3 of 35) when the probe repeats.
      type: list
      elements: str
      sample: ["[Errno 111] Connection refused"]
    status:
      description: The last request's status; V(-1) when it got no answer (and in check mode), so C(== 200) compares.
      type: int
      sample: 200
    error:
      description: The last request's error line, or null.
      type: str
    json:
      description: The last answer's body parsed, when its C(Content-Type) is JSON and it came whole; else null.
      type: raw
      sample: {"status": "ok", "release": "r2"}
    body:
      description: >-
        The last answer's body as text, its first O(max_body_bytes) bytes, when it is not JSON; null when it was
        JSON or there was no answer.
      type: str
    bytes:
      description: Size of the last answer's whole body; null in check mode.
      type: int
      sample: 42
    retry_after:
      description: The last answer's C(Retry-After) header, or null.
      type: str
      sample: "12"
    duration_ms:
      description: Time of the probe's requests together; null in check mode.
      type: float
      sample: 3.4
by_name:
  description: The same entries as RV(probes), by O(probes[].name), for example C(result.by_name.health.status).
  returned: always
  type: dict
  sample: {"health": {"name": "health", "status": 200, "statuses": [200], "json": {"status": "ok"}}}
"""

import time

from ansible_collections.slogate.supabase.plugins.module_utils import cache, http_probe, http_request
from ansible_collections.slogate.supabase.plugins.module_utils.masking import SecretMaskingModule
from ansible_collections.slogate.supabase.plugins.module_utils.errors import SlogateError

HTTP_AGENT = "slogate.supabase-http_probe"

PROBE_OPTIONS = dict(
    name=dict(type="str", required=True),
    url=dict(type="str"),
    path=dict(type="str"),
    method=dict(type="str", choices=list(http_probe.METHODS), default="GET"),
    token=dict(type="str", no_log=False),
    repeat=dict(type="int", default=1),
    headers=dict(type="dict", default={}),
)

ARGUMENT_SPEC = dict(
    base_url=dict(type="str"),
    probes=dict(type="list", elements="dict", required=True, options=PROBE_OPTIONS),
    bearer_tokens=dict(type="dict", default={}, no_log=True),
    timeout=dict(type="float", default=10),
    validate_certs=dict(type="bool", default=True),
    max_body_bytes=dict(type="int", default=65536),
)


def send_probe(probe, options):
    """Send a probe's requests one after the other; return its shaped result."""
    headers = http_probe.request_headers(probe, options)
    answers = [http_request.send(probe.url, method=probe.method, headers=headers, timeout=options.timeout,
                                 validate_certs=options.validate_certs, keep_bytes=options.max_body_bytes,
                                 http_agent=HTTP_AGENT, use_netrc=False)
               for dummy in range(probe.repeat)]
    return http_probe.shape_probe(probe, answers, options.max_body_bytes)


def module_kwargs():
    """AnsibleModule's arguments, for the module and for its run in the Ansible worker (the action plugin)."""
    return dict(argument_spec=ARGUMENT_SPEC, supports_check_mode=True)


def secrets_in(params):
    """The passwords in the user info of base_url and the probes' URLs: kept out of every output, the invocation at
    -vvv included."""
    urls = [params.get("base_url")]
    if isinstance(params.get("probes"), list):
        urls.extend(item.get("url") for item in params["probes"] if isinstance(item, dict))
    return cache.url_passwords([url for url in urls if url])


def run_task(module):
    """The whole task on an AnsibleModule or the worker's stand-in; ends with exit_json."""
    try:
        options = http_probe.parse_options(module.params)
    except SlogateError as exc:
        module.fail_json(msg=str(exc))
    started = time.monotonic()
    entries = http_probe.plan(options) if module.check_mode else [send_probe(probe, options) for probe in options.probes]
    duration_ms = None if module.check_mode else round(1000.0 * (time.monotonic() - started), 1)
    module.exit_json(changed=False, msg=http_probe.summarize(entries, check_mode=module.check_mode),
                     requests=options.requests, duration_ms=duration_ms, probes=entries,
                     by_name=http_probe.by_name(entries))


def main():
    run_task(SecretMaskingModule(secrets_in, **module_kwargs()))


if __name__ == "__main__":
    main()
