// The runbook's k6 load test: search-heavy users with some admin calls.
//
//   k6 run --duration 5m --vus 50 tests/load/search-performance-enhanced.js
//   k6 run -e BASE_URL=http://127.0.0.1:3000 --out json=out/k6.jsonl --summary-export out/k6-summary.json \
//       tests/load/search-performance-enhanced.js
//
// Either output file is read back by slogate.supabase.slo_check (source: k6),
// through plugins/module_utils/load_reports.py: --out json gives exact
// per-bucket numbers, --summary-export one bucket for the whole run.
//
// Environment: BASE_URL (default http://127.0.0.1:3000), SLOGATE_USER_TOKEN,
// SLOGATE_ADMIN_TOKEN (Bearer tokens), SLOGATE_THINK_MIN / SLOGATE_THINK_MAX
// (think time in seconds, default 1 and 3).
//
// Outcomes: a 4xx (429 included) is a client outcome, never a failure; status
// >= 500 and no response are. The response callback below makes k6's
// http_req_failed count exactly those, so its rate is the SLO gate's err_rate.
// cache_hits is recorded for every request (true when the X-Cache header says
// hit), so its rate is cache hits of all requests, as the SLO gate defines it.

import http from 'k6/http';
import { sleep } from 'k6';
import { Rate } from 'k6/metrics';

const BASE_URL = (__ENV.BASE_URL || 'http://127.0.0.1:3000').replace(/\/+$/, '');
// SLOGATE_SECRETS_FILE: JSON {"SLOGATE_USER_TOKEN", "SLOGATE_ADMIN_TOKEN"}, so tokens stay out of the environment.
const SECRETS = __ENV.SLOGATE_SECRETS_FILE ? JSON.parse(open(__ENV.SLOGATE_SECRETS_FILE)) : {};
const USER_TOKEN = SECRETS.SLOGATE_USER_TOKEN || __ENV.SLOGATE_USER_TOKEN || '';
const ADMIN_TOKEN = SECRETS.SLOGATE_ADMIN_TOKEN || __ENV.SLOGATE_ADMIN_TOKEN || '';
const THINK_MIN = parseFloat(__ENV.SLOGATE_THINK_MIN || '1');
const THINK_MAX = Math.max(parseFloat(__ENV.SLOGATE_THINK_MAX || '3'), THINK_MIN);

const SEARCH_TERMS = [
  'postgres', 'performance', 'security', 'caching', 'migrations', 'search', 'indexes', 'monitoring', 'backup',
  'rollback', 'materialized views', 'connection pool', 'row level security', 'latency', 'vacuum', 'deploy',
  'runbook', 'replica', 'audit log', 'full-text search',
];
// The same mix as tests/load/locustfile.py: weights of search, health, admin performance, admin audit log.
const MIX = [['search', 20], ['health', 2], ['admin_performance', 1], ['admin_audit_log', 1]];

export const cacheHits = new Rate('cache_hits');

export const options = {
  vus: 50,
  duration: '5m',
  thresholds: {
    http_req_duration: ['p(95)<500', 'p(99)<1000'],
    http_req_failed: ['rate<0.01'],
    cache_hits: ['rate>=0.30'],
  },
  summaryTrendStats: ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)', 'count'],
};

http.setResponseCallback(http.expectedStatuses({ min: 200, max: 499 }));

function bearer(token) {
  return token ? { Authorization: `Bearer ${token}` } : {};
}

function pick(items) {
  return items[Math.floor(Math.random() * items.length)];
}

function pickTask() {
  const total = MIX.reduce((sum, item) => sum + item[1], 0);
  let roll = Math.random() * total;
  for (const [name, weight] of MIX) {
    roll -= weight;
    if (roll < 0) {
      return name;
    }
  }
  return MIX[0][0];
}

function get(path, headers, name) {
  const response = http.get(`${BASE_URL}${path}`, { headers, tags: { name } });
  const cache = response.status ? String(response.headers['X-Cache'] || '').toLowerCase() : '';
  cacheHits.add(cache === 'hit');
  return response;
}

export default function () {
  const task = pickTask();
  if (task === 'search') {
    get(`/api/search?q=${encodeURIComponent(pick(SEARCH_TERMS))}`, bearer(USER_TOKEN), '/api/search?q=');
  } else if (task === 'health') {
    get('/api/health', {}, '/api/health');
  } else {
    const token = Math.random() < 0.9 ? ADMIN_TOKEN : USER_TOKEN;
    const path = task === 'admin_performance' ? '/api/admin/performance' : '/api/admin/audit-log';
    get(path, bearer(token), path);
  }
  sleep(THINK_MIN + Math.random() * (THINK_MAX - THINK_MIN));
}
