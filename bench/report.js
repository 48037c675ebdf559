'use strict';
// bench/side_by_side.sh's records (JSON lines) -> markdown tables on stdout.
// Record kinds: "wsync" and "peer" (one drain each), "pickup", "claim".
const fs = require('fs');

const rows = fs.readFileSync(process.argv[2], 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
const drains = rows.filter((r) => r.kind === 'wsync' || r.kind === 'peer');
const key = (r) => `${r.round}:${r.delay_ms}:${r.concurrency}:${r.n}`;
const mib = (kb) => (kb ? (kb / 1024).toFixed(1) : '-');
const num = (v, d = 0) => (v === undefined || v === null || Number.isNaN(+v) ? '-' : (+v).toFixed(d));
const out = [];

// Best peer of each (round, config): the ratio compares runs of the same round.
const best = new Map();
for (const r of drains) {
  if (r.kind !== 'peer' || !r.ok) continue;
  const b = best.get(key(r));
  if (!b || r.syncs_s > b.syncs_s) best.set(key(r), r);
}
const ratioOf = (r) => {
  const b = best.get(key(r));
  return b ? r.syncs_s / b.syncs_s : null;
};
const label = (r) => (r.kind === 'wsync' ? `**wsync** ${r.version || ''}`.trim() : `${r.system} ${r.version}`);
const verified = (r) => {
  if (r.ok) return 'yes';
  if (r.timed_out) return `TIMEOUT (${r.done_ok}/${r.n})`;
  const bits = [];
  if (r.links !== r.n) bits.push(`links ${r.links}`);
  if (r.provider_count !== r.n) bits.push(`provider ${r.provider_count}`);
  if (r.provider_dups) bits.push(`${r.provider_dups} duplicate plans`);
  if (r.failed) bits.push(`${r.failed} failed`);
  return `NO (${bits.join(', ') || 'see log'})`;
};

out.push('## Throughput (drain of N queued creates)');
out.push('');
out.push('| round | system | DELAY_MS | concurrency | N | run (s) | syncs/s | wsync / best peer | peak RSS (MiB) | CPU (s) | load before | verified |');
out.push('|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---|');
for (const r of drains) {
  const ratio = r.kind === 'wsync' ? ratioOf(r) : null;
  const bp = r.kind === 'wsync' && best.get(key(r));
  out.push(`| ${r.round} | ${label(r)} | ${r.delay_ms} | ${r.concurrency}${r.extra ? ` (${r.extra.trim()})` : ''} | ${r.n} | ` +
    `${num(r.secs, 2)} | ${num(r.syncs_s)} | ${ratio === null ? '-' : `**${ratio.toFixed(2)}x** (${bp.system})`} | ` +
    `${mib(r.rss_kb)}${r.plugins_pss_kb ? ` + ${mib(r.plugins_pss_kb)}` : ''} | ` +
    `${r.cpu_s === undefined ? '-' : num(r.cpu_s, 1)} | ${r.load || '-'} | ${verified(r)} |`);
}
out.push('');
out.push('syncs/s = entries finished / measured time (daemon or worker start until the poller sees the queue drained).');
out.push('Verified = all N processed without error, N links, the fake provider counted N creates (and, for wsync, no duplicate external_id).');
out.push('Peak RSS: wsyncd\'s VmHWM, + its plugin processes\' PSS at the end of the drain (they share wsyncd\'s binary and libraries, so PSS counts each shared page once in all; [plugins] isolate); the peers\' worker process under /usr/bin/time -v. CPU: wsyncd\'s and its plugin processes\' user+system time.');

const ws = drains.filter((r) => r.kind === 'wsync');
out.push('');
out.push('## Enqueue (one INSERT of N workouts; wsync through its triggers)');
out.push('');
out.push('| round | DELAY_MS | concurrency | N | wsync INSERT, triggers on (s) | same INSERT, no triggers (s) | ratio | triggers off by `SET LOCAL wsync.triggers = off` (s) | peers\' bulk enqueue (s) |');
out.push('|---:|---:|---:|---:|---:|---:|---:|---:|---|');
for (const r of ws) {
  const peers = drains.filter((p) => p.kind === 'peer' && key(p) === key(r)).map((p) => `${p.system} ${num(p.enqueue_s, 2)}`).join(', ');
  out.push(`| ${r.round} | ${r.delay_ms} | ${r.concurrency} | ${r.n} | ${num(r.enqueue_s, 2)} | ${num(r.plain_insert_s, 2)} | ` +
    `**${r.plain_insert_s > 0 ? (r.enqueue_s / r.plain_insert_s).toFixed(1) : '-'}x** | ${num(r.triggers_off_s, 2)} | ${peers || '-'} |`);
}
out.push('');
out.push('"No triggers" is the same INSERT into a copy of `workouts` (LIKE ... INCLUDING ALL: same columns, defaults, indexes) without wsync\'s triggers.');

const pk = rows.filter((r) => r.kind === 'pickup');
if (pk.length) {
  out.push('');
  out.push('## Pickup latency (idle wsyncd, LISTEN on; one INSERT at a time, from its commit until the entry is processed)');
  out.push('');
  out.push('| concurrency | enqueues | p50 (ms) | p90 (ms) | p99 (ms) | max (ms) | mean (ms) | failed | load before |');
  out.push('|---:|---:|---:|---:|---:|---:|---:|---:|---|');
  for (const r of pk) {
    out.push(`| ${r.concurrency} | ${r.n} | **${num(r.p50_ms, 1)}** | ${num(r.p90_ms, 1)} | **${num(r.p99_ms, 1)}** | ${num(r.max_ms, 1)} | ${num(r.mean_ms, 1)} | ${r.failed} | ${r.load} |`);
  }
}

const cl = rows.filter((r) => r.kind === 'claim');
if (cl.length) {
  out.push('');
  out.push('## Claim cost (bench/drain.sh: scripted plugin answering at once, workers=4, wsyncd --once)');
  out.push('');
  out.push('| entries | processed rows added | empty table (entries/s) | with history (entries/s) | ratio | load before |');
  out.push('|---:|---:|---:|---:|---:|---|');
  for (const r of cl) {
    out.push(`| ${r.entries} | ${r.history} | ${num(r.empty_rate)} | ${num(r.history_rate)} | **${r.ratio === null ? '-' : r.ratio.toFixed(2)}** | ${r.load} |`);
  }
}

// Against the targets of issue 11.
const t = [];
const fmtList = (xs, f) => (xs.length ? xs.map(f).join(', ') : 'not measured');
const instant = ws.filter((r) => r.delay_ms === 0 && ratioOf(r) !== null);
t.push(['instant provider: wsync / best peer', '>= 3.5x', fmtList(instant, (r) => `${ratioOf(r).toFixed(2)}x (C=${r.concurrency}, round ${r.round})`)]);
const slow = drains.filter((r) => r.delay_ms > 0);
t.push(['provider latency: share of the ideal C / delay', '>= 95 % (wsync)', fmtList(slow, (r) =>
  `${r.kind === 'wsync' ? 'wsync' : r.system} ${(100 * r.syncs_s / (r.concurrency * 1000 / r.delay_ms)).toFixed(0)} % (${r.delay_ms} ms, C=${r.concurrency})`)]);
const rss = ws.filter((r) => r.rss_kb).map((r) => r.rss_kb);
t.push(['peak RSS of wsyncd', '<= 16 MiB', rss.length ? `${mib(Math.max(...rss))} MiB (max over the wsync runs)` : 'not measured']);
const plugins = ws.filter((r) => r.plugins_pss_kb).map((r) => r.plugins_pss_kb);
if (plugins.length)
  t.push(['plugin processes (PSS, all of them)', '-', `${mib(Math.max(...plugins))} MiB (max over the wsync runs)`]);
t.push(['pickup p50 / p99', '<= 20 ms / <= 100 ms', fmtList(pk, (r) => `${num(r.p50_ms, 1)} / ${num(r.p99_ms, 1)} ms`)]);
t.push(['claim rate with 1M processed rows / empty', '>= 0.80 (within 20 %)', fmtList(cl, (r) => `${r.ratio === null ? '-' : r.ratio.toFixed(2)} (${r.history} rows)`)]);
t.push(['enqueue: triggers on / no triggers', '<= 3x', fmtList(ws, (r) => `${(r.enqueue_s / r.plain_insert_s).toFixed(1)}x (N=${r.n})`)]);
out.push('');
out.push('## Against the targets of issue 11');
out.push('');
out.push('| what | target | measured |');
out.push('|---|---|---|');
for (const [a, b, c] of t) out.push(`| ${a} | ${b} | ${c} |`);
console.log(out.join('\n'));
