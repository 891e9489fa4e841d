#!/usr/bin/env node
// Depth-1 latency in Node (issue 14): one 4 KiB O_DIRECT random write in flight, awaited,
// then the next, through DirectFile.write on io_uring, through the bare engine's writev, and
// through fs.writeSync on an O_DIRECT fd (pwrite: what fio's psync does), interleaved in
// blocks of 128 writes inside one process so load on a shared machine falls on all alike.
// Each variant (a built tree of odirect, and environment for it) runs in a child process of
// its own; variants alternate round by round (A B C A B C ...) on one scratch file. Prints per
// variant the median over rounds of each contender's p50, and of p50 ÷ the same process's
// pwrite p50. Needs root (the scratch harness) and built trees (npm run build).
//
//   node bench/ref/depth1-node.mjs [kind=xfs] [rounds=5] [seconds=6] [variant...]
//
// A variant is LABEL=TREE[,ENV=VALUE...], e.g. before=/tmp/odirect-main this=.
// this-defer=.,ODIRECT_URING_DEFER_TASKRUN=1 (default: this tree alone, with and without
// DEFER_TASKRUN). Bounded: rounds × variants × seconds; the scratch fs is removed on exit.
import { execFileSync } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const root = process.env.ODIRECT_ROOT ?? path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
const BLOCK = 4096;
const FILE_BYTES = 256 << 20;
const OPS_PER_TURN = 128;

function parseVariant(spec) {
  const [label, rest] = spec.split(/=(.*)/s);
  const [tree, ...envs] = rest.split(',');
  return { label, root: path.resolve(tree), env: Object.fromEntries(envs.map((e) => e.split(/=(.*)/s).slice(0, 2))) };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function child(file, seconds) {
  const odirect = require(path.join(root, 'dist/index.js'));
  const { uringEngine } = require(path.join(root, 'dist/engines/uring.js'));
  const f = await odirect.open(file, { engine: 'uring' });
  const fd = fs.openSync(file, fs.constants.O_RDWR | fs.constants.O_DIRECT);
  const engine = uringEngine();
  const buf = odirect.alignedBuffer(BLOCK);
  randomFillSync(buf);
  const blocks = FILE_BYTES / BLOCK;
  const at = () => Math.floor(Math.random() * blocks) * BLOCK;
  const contenders = {
    'DirectFile.write': { io: (p) => f.write(buf, p), lat: [], cpu: 0 },
    'engine.writev': { io: (p) => engine.writev(f.fd ?? f.file.fd, [buf], p, 0), lat: [], cpu: 0 },
    'pwrite (fs.writeSync)': { sync: (p) => fs.writeSync(fd, buf, 0, BLOCK, p), lat: [], cpu: 0 },
  };
  const names = Object.keys(contenders);
  const deadline = process.hrtime.bigint() + BigInt(Math.round(seconds * 1e9));
  for (let turn = 0; process.hrtime.bigint() < deadline; turn++) {
    const c = contenders[names[turn % names.length]];
    const cpu0 = process.cpuUsage();
    for (let i = 0; i < OPS_PER_TURN; i++) {
      const p = at();
      const a = process.hrtime.bigint();
      if (c.sync) c.sync(p);
      else await c.io(p);
      c.lat.push(Number(process.hrtime.bigint() - a));
    }
    const d = process.cpuUsage(cpu0);
    c.cpu += d.user + d.system;
  }
  fs.closeSync(fd);
  await f.close();
  const out = {};
  for (const [name, c] of Object.entries(contenders)) {
    c.lat.sort((x, y) => x - y);
    out[name] = { p50_ns: c.lat[c.lat.length >> 1], p99_ns: c.lat[Math.floor(c.lat.length * 0.99)], cpu_us_per_io: c.cpu / c.lat.length, ops: c.lat.length };
  }
  console.log(JSON.stringify(out));
}

async function parent() {
  const kind = process.argv[2] ?? 'xfs';
  const rounds = Number(process.argv[3] ?? 5);
  const seconds = Number(process.argv[4] ?? 6);
  const specs = process.argv.length > 5 ? process.argv.slice(5) : [`this=${root}`, `this-defer=${root},ODIRECT_URING_DEFER_TASKRUN=1`];
  const variants = specs.map(parseVariant);
  const scratchfs = require(path.join(root, 'dist/scratch/scratchfs.js'));
  scratchfs.registerCleanupOnExit();
  const scratch = await scratchfs.makeScratchFs({ kind, sizeMiB: 1024, label: 'depth1node' });
  try {
    const file = path.join(scratch.mountpoint, 'data');
    // Written and synced: every write below overwrites written blocks (docs/kernel-facts.md §5).
    const fd = fs.openSync(file, 'w');
    const mib = Buffer.alloc(1 << 20, 0x5a);
    for (let p = 0; p < FILE_BYTES; p += mib.length) fs.writeSync(fd, mib, 0, mib.length, p);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    const results = Object.fromEntries(variants.map((v) => [v.label, []]));
    for (let round = 0; round < rounds; round++) {
      for (let i = 0; i < variants.length; i++) {
        const v = variants[(i + round) % variants.length];
        const env = { ...process.env, ODIRECT_URING_DEFER_TASKRUN: '', ...v.env, ODIRECT_ROOT: v.root };
        const out = execFileSync(process.execPath, [new URL(import.meta.url).pathname, '--child', file, String(seconds)],
          { env, encoding: 'utf8', timeout: (seconds + 60) * 1000 });
        results[v.label].push(JSON.parse(out.trim().split('\n').pop()));
      }
    }
    console.log(`\n${kind}: ${rounds} rounds × ${seconds} s per variant, contenders interleaved per process; medians over rounds`);
    console.log('variant       contender               p50 µs  ÷pwrite  p99 µs  CPU µs/IO   per-round ÷pwrite');
    for (const { label: v } of variants) {
      for (const name of Object.keys(results[v][0])) {
        const rs = results[v];
        const ratios = rs.map((r) => r[name].p50_ns / r['pwrite (fs.writeSync)'].p50_ns);
        console.log(`${v.padEnd(13)} ${name.padEnd(22)} ${(median(rs.map((r) => r[name].p50_ns)) / 1000).toFixed(1).padStart(7)} ${median(ratios).toFixed(3).padStart(7)}× ${(median(rs.map((r) => r[name].p99_ns)) / 1000).toFixed(1).padStart(7)} ${median(rs.map((r) => r[name].cpu_us_per_io)).toFixed(2).padStart(9)}   ${ratios.map((x) => x.toFixed(2)).join(' ')}`);
      }
    }
  } finally {
    await scratchfs.removeScratchFs(scratch);
  }
}

if (process.argv[2] === '--child') await child(process.argv[3], Number(process.argv[4]));
else await parent();
