'use strict';
// Fake Wahoo for bench/side_by_side.sh: the shape of the peers' fake provider
// (../shared/bench/peers/fake_provider.js: same counter, DELAY_MS, /count and
// /reset), but it accepts what plugins/wahoo actually sends: a form-encoded
// body with Rails keys and a plan file in a base64 data URL.
//
//   POST /v1/plans            -> after DELAY_MS: 201 {"id": n, "external_id": ...}
//                                (n = 1, 2, 3, ... never reset); 400 if the bearer
//                                token, the form or the plan file is missing/bad
//   GET  /v1/plans?external_id=X -> 200 [plans created with that external_id]
//                                (Wahoo's documented lookup; answered from what
//                                was created, nothing is ever merged)
//   PUT  /v1/plans/:id        -> 200 {"id": id} for a plan that exists, else 404
//   GET  /count               -> {"count": creates answered 201, "bad": 400s,
//                                 "dups": creates whose external_id was already
//                                 created (a duplicate plan on a calendar),
//                                 "lookups", "updates", "delay_ms"}
//   POST /reset               -> zeroes the counters (not the id sequence)
//
// It never deduplicates: every valid POST makes a new plan, so a system that
// posts twice shows count > N and dups > 0.  Env: PORT (default 18932),
// DELAY_MS (default 0).  Binds 127.0.0.1 only.
const http = require('http');

const PORT = parseInt(process.env.PORT || '18932', 10);
const DELAY_MS = parseInt(process.env.DELAY_MS || '0', 10);
const DATA_URL = 'data:application/json;base64,';
let nextId = 1;
let count = 0, bad = 0, dups = 0, lookups = 0, updates = 0;
const byExternal = new Map(); // external_id -> [plan ids]
const plans = new Set();

function reply(res, status, obj) {
  const body = JSON.stringify(obj);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function later(fn) {
  if (DELAY_MS > 0) setTimeout(fn, DELAY_MS); else fn();
}

// The plan form as the wahoo plugin sends it, or null.  Parsing the plan file
// is the fake's share of the work, as fake_provider.js parses its JSON body.
function planForm(req, raw, create) {
  if (!/^Bearer \S+$/.test(req.headers['authorization'] || '')) return null;
  if (!(req.headers['content-type'] || '').startsWith('application/x-www-form-urlencoded')) return null;
  const f = new URLSearchParams(raw.toString('utf8'));
  const file = f.get('plan[file]') || '';
  if (!file.startsWith(DATA_URL) || f.get('plan[filename]') !== 'plan.json') return null;
  if (create && !f.get('plan[external_id]')) return null;
  try {
    const plan = JSON.parse(Buffer.from(file.slice(DATA_URL.length), 'base64').toString('utf8'));
    if (!plan || typeof plan.header !== 'object' || !Array.isArray(plan.intervals)) return null;
  } catch (_) { return null; }
  return f;
}

function body(req, fn) {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => fn(Buffer.concat(chunks)));
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://127.0.0.1');
  if (req.method === 'GET' && url.pathname === '/count') {
    req.resume();
    return reply(res, 200, { count, bad, dups, lookups, updates, delay_ms: DELAY_MS });
  }
  if (req.method === 'POST' && url.pathname === '/reset') {
    count = bad = dups = lookups = updates = 0;
    byExternal.clear();
    req.resume();
    return reply(res, 200, { count });
  }
  if (req.method === 'POST' && url.pathname === '/v1/plans') {
    return body(req, (raw) => {
      const f = planForm(req, raw, true);
      if (!f) { bad++; return reply(res, 400, { error: 'bad request' }); }
      const ext = f.get('plan[external_id]');
      const id = nextId++;
      count++;
      plans.add(id);
      const seen = byExternal.get(ext);
      if (seen) { dups++; seen.push(id); } else byExternal.set(ext, [id]);
      later(() => reply(res, 201, { id, external_id: ext }));
    });
  }
  if (req.method === 'GET' && url.pathname === '/v1/plans') {
    req.resume();
    if (!/^Bearer \S+$/.test(req.headers['authorization'] || '')) { bad++; return reply(res, 401, { error: 'unauthorized' }); }
    lookups++;
    const ext = url.searchParams.get('external_id');
    const ids = (ext && byExternal.get(ext)) || [];
    return later(() => reply(res, 200, ids.map((id) => ({ id, external_id: ext, deleted: false }))));
  }
  const m = /^\/v1\/plans\/(\d+)$/.exec(url.pathname);
  if (req.method === 'PUT' && m) {
    return body(req, (raw) => {
      if (!planForm(req, raw, false)) { bad++; return reply(res, 400, { error: 'bad request' }); }
      const id = parseInt(m[1], 10);
      if (!plans.has(id)) return reply(res, 404, { error: 'not found' });
      updates++;
      later(() => reply(res, 200, { id }));
    });
  }
  req.resume();
  reply(res, 404, { error: 'not found' });
});
server.keepAliveTimeout = 60000;
server.headersTimeout = 65000;
server.listen(PORT, '127.0.0.1', () => {
  process.stdout.write(`fake_wahoo listening on 127.0.0.1:${PORT} delay_ms=${DELAY_MS}\n`);
});
for (const s of ['SIGTERM', 'SIGINT']) process.on(s, () => server.close(() => process.exit(0)) && setTimeout(() => process.exit(0), 500).unref());
