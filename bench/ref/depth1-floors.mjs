#!/usr/bin/env node
// Depth-1 floors (issue 14): runs bench/ref/depth1_wait.c's ways of waiting for one
// 4 KiB O_DIRECT random write on a scratch XFS and ext4, all interleaved in one process
// (the machine is shared and noisy), plus fio's psync (the yardstick) in a run of
// its own each round, and prints the median p50/p99/CPU per I/O of each over the rounds,
// with p50 ÷ pwrite's p50.
// Needs root (the scratch harness makes and removes the loop filesystems) and `npm run build:ts`.
//
//   node bench/ref/depth1-floors.mjs [rounds=5] [seconds=10] [kinds=xfs,ext4]
//
// Bounded: rounds × (seconds + 2 s of fio) per filesystem; scratch filesystems removed on exit.
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..');
const scratchfs = require(path.join(root, 'dist/scratch/scratchfs.js'));

const rounds = Number(process.argv[2] ?? 5);
const seconds = Number(process.argv[3] ?? 10);
const kinds = (process.argv[4] ?? 'xfs,ext4').split(',');
const FILE_BYTES = 256 << 20;

const lu = path.join(root, 'deps/liburing/src');
const binary = path.join(root, 'bench/bin/depth1_wait');
fs.mkdirSync(path.dirname(binary), { recursive: true });
execFileSync('cc', ['-O2', '-Wall', '-D_GNU_SOURCE', '-I', path.join(lu, 'include'), '-o', binary,
  path.join(root, 'bench/ref/depth1_wait.c'), ...['setup', 'queue', 'register', 'syscall', 'version'].map((f) => path.join(lu, `${f}.c`))]);

// ringfd/defer is left out: nothing wakes a poller of the ring fd when DEFER_TASKRUN work
// is queued (every wait timed out after 1 s; docs/kernel-facts.md §5).
const contenders = ['psync', 'enter/plain', 'efd/plain', 'ringfd/plain', 'enter/coop', 'efd/coop', 'ringfd/coop',
  'enter/defer', 'efd/defer', 'efd/deferlate'];

// One process per round, all contenders interleaved in blocks of 128 writes inside it.
function runRound(file) {
  const out = execFileSync(binary, ['--file', file, '--size', String(FILE_BYTES), '--runtime', String(seconds), ...contenders],
    { encoding: 'utf8', timeout: (seconds + 60) * 1000 });
  const rows = out.trim().split('\n').map((l) => JSON.parse(l));
  const bad = rows.find((r) => r.error);
  if (bad) throw new Error(bad.error);
  return rows;
}

// fio's psync (the yardstick) cannot run inside that process: a run of its own per round.
function runFio(file) {
  const out = execFileSync('fio', ['--name=d1', `--filename=${file}`, '--rw=randwrite', '--bs=4k', '--direct=1',
    '--ioengine=psync', '--iodepth=1', '--runtime=2', '--time_based', `--size=${FILE_BYTES}`,
    '--norandommap', '--randrepeat=0', '--output-format=json'], { encoding: 'utf8', timeout: 60_000 });
  const job = JSON.parse(out).jobs[0];
  const w = job.write;
  return { name: 'fio-psync (own run)', p50_ns: w.clat_ns.percentile['50.000000'], p99_ns: w.clat_ns.percentile['99.000000'],
    cpu_us_per_io: ((job.usr_cpu + job.sys_cpu) / 100) * job.job_runtime * 1000 / w.total_ios, ops: w.total_ios, spurious: 0, eintr: 0, stalls: 0 };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

scratchfs.registerCleanupOnExit();
for (const kind of kinds) {
  const scratch = await scratchfs.makeScratchFs({ kind, sizeMiB: 1024, label: 'depth1' });
  try {
    const file = path.join(scratch.mountpoint, 'data');
    // Preallocated and written, synced: every write below overwrites written blocks (no
    // unwritten-extent conversion, no punt to io-wq: docs/kernel-facts.md §5).
    const fd = fs.openSync(file, 'w');
    const mib = Buffer.alloc(1 << 20, 0x5a);
    for (let at = 0; at < FILE_BYTES; at += mib.length) fs.writeSync(fd, mib, 0, mib.length, at);
    fs.fsyncSync(fd);
    fs.closeSync(fd);
    const results = new Map();
    for (let round = 0; round < rounds; round++) {
      for (const r of [...runRound(file), runFio(file)]) {
        if (!results.has(r.name)) results.set(r.name, []);
        results.get(r.name).push(r);
      }
    }
    const base = median(results.get('psync').map((r) => r.p50_ns));
    console.log(`\n${kind}: ${rounds} rounds × ${seconds} s interleaved (blocks of 128 writes); medians over rounds`);
    console.log('contender            p50 µs  ÷psync  p99 µs  CPU µs/IO  ops/round  spurious  eintr  stalls');
    for (const [name, rs] of results) {
      const p50 = median(rs.map((r) => r.p50_ns));
      const sum = (k) => rs.reduce((s, r) => s + r[k], 0);
      console.log(`${name.padEnd(19)} ${(p50 / 1000).toFixed(1).padStart(7)} ${(p50 / base).toFixed(2).padStart(6)}× ${(median(rs.map((r) => r.p99_ns)) / 1000).toFixed(1).padStart(7)} ${median(rs.map((r) => r.cpu_us_per_io)).toFixed(2).padStart(9)} ${String(Math.round(median(rs.map((r) => r.ops)))).padStart(10)} ${String(sum('spurious')).padStart(9)} ${String(sum('eintr')).padStart(6)} ${String(sum('stalls')).padStart(7)}`);
    }
    console.log(`p50 ÷ psync p50 per round: ${JSON.stringify(Object.fromEntries([...results].map(([k, rs]) => [k, rs.map((r, i) => +(r.p50_ns / results.get('psync')[i].p50_ns).toFixed(2))])))}`);
  } finally {
    await scratchfs.removeScratchFs(scratch);
  }
}
