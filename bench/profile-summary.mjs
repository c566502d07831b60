#!/usr/bin/env node
// Summarises V8 .cpuprofile files (node --cpu-prof; `BENCH_PROFILE=1 npm run bench` writes them to
// bench/results/profiles): self time by package/area and the top functions.
// usage: node bench/profile-summary.mjs [file-or-dir ...] [--top N] [--skip-ms MS]
//   --skip-ms: leave out the first MS of each profile (process start-up)
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';

const args = process.argv.slice(2);
const topIdx = args.indexOf('--top');
const TOP = topIdx >= 0 ? Number(args.splice(topIdx, 2)[1]) : 25;
const skipIdx = args.indexOf('--skip-ms');
const SKIP_US = skipIdx >= 0 ? Number(args.splice(skipIdx, 2)[1]) * 1000 : 0;
const inputs = args.length ? args : [new URL('./results/profiles', import.meta.url).pathname];
const files = inputs.flatMap((p) =>
  statSync(p).isDirectory() ? readdirSync(p).filter((f) => f.endsWith('.cpuprofile')).map((f) => join(p, f)) : [p],
);

function area(url) {
  if (!url) return '(native / gc / idle)';
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0]}`;
  const nm = url.lastIndexOf('/node_modules/');
  if (nm >= 0) {
    const rest = url.slice(nm + 14).split('/');
    return rest[0].startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0];
  }
  const m = /\/(dist|bench|src)\/(.*)$/.exec(url);
  return m ? `${m[1]}/${m[2]}` : url;
}

for (const file of files) {
  const prof = JSON.parse(readFileSync(file, 'utf8'));
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const dt = new Map();
  let t = 0;
  for (let i = 0; i < prof.samples.length; i++) {
    t += prof.timeDeltas[i] ?? 0;
    if (t < SKIP_US) continue;
    dt.set(prof.samples[i], (dt.get(prof.samples[i]) ?? 0) + (prof.timeDeltas[i] ?? 0));
  }
  const parent = new Map();
  for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const total = [...dt.values()].reduce((a, b) => a + b, 0);
  let idle = 0;
  const byArea = new Map();
  const byFn = new Map();
  for (const [id, us] of dt) {
    const n = byId.get(id);
    const cf = n.callFrame;
    if (cf.functionName === '(idle)') {
      idle += us;
      continue;
    }
    const a = cf.functionName === '(garbage collector)' ? '(gc)' : cf.functionName === '(program)' ? '(program)' : area(cf.url);
    byArea.set(a, (byArea.get(a) ?? 0) + us);
    const key = `${cf.functionName || '(anonymous)'}  ${area(cf.url)}:${cf.lineNumber + 1}`;
    byFn.set(key, (byFn.get(key) ?? 0) + us);
  }
  const busy = total - idle;
  // Inclusive time of the project's own functions (dist/, bench/): each sample counts once per function.
  const incl = new Map();
  for (const [id, us] of dt) {
    if (byId.get(id).callFrame.functionName === '(idle)') continue;
    const seen = new Set();
    for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
      const cf = byId.get(cur).callFrame;
      const a = area(cf.url);
      if (!/^(dist|bench|src)\//.test(a)) continue;
      const key = `${cf.functionName || '(anonymous)'}  ${a}:${cf.lineNumber + 1}`;
      if (seen.has(key)) continue;
      seen.add(key);
      incl.set(key, (incl.get(key) ?? 0) + us);
    }
  }
  const pct = (us) => `${((100 * us) / busy).toFixed(1).padStart(5)}%`;
  console.log(`\n${file}\n  busy ${(busy / 1000).toFixed(0)} ms of ${(total / 1000).toFixed(0)} ms sampled`);
  console.log('  self time by area:');
  for (const [a, us] of [...byArea].sort((x, y) => y[1] - x[1]).slice(0, 15)) console.log(`    ${pct(us)}  ${a}`);
  console.log(`  top ${TOP} functions (self):`);
  for (const [f, us] of [...byFn].sort((x, y) => y[1] - x[1]).slice(0, TOP)) console.log(`    ${pct(us)}  ${f}`);
  console.log(`  top ${TOP} project functions (inclusive):`);
  for (const [f, us] of [...incl].sort((x, y) => y[1] - x[1]).slice(0, TOP)) console.log(`    ${pct(us)}  ${f}`);
}
