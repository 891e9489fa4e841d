#!/usr/bin/env node
// Where DirectFile.write's CPU goes (issue 14): 4 KiB random writes (or reads) at
// depth 32 on a scratch XFS or ext4 file, through DirectFile and through the bare
// io_uring engine, with CPU µs per I/O from process.cpuUsage() for each.
// Needs root (the scratch harness makes and removes a loop filesystem) and a
// built tree (npm run build). Run it under --cpu-prof to see where the time goes:
//
//   node --cpu-prof --cpu-prof-dir=/tmp/prof scripts/profile-write.mjs xfs write 4
//   node scripts/profile-write.mjs ext4 read 3
//
// Arguments: filesystem (xfs|ext4), op (write|read|writeSync|readSync), seconds (default 4).
// Bounded: each phase runs for the given seconds; the scratch fs is removed on exit.
import { createRequire } from 'node:module';
import { randomFillSync } from 'node:crypto';
import * as path from 'node:path';

const require = createRequire(import.meta.url);
// ODIRECT_ROOT: another built tree to profile (e.g. main's, for a before/after).
const root = process.env.ODIRECT_ROOT ?? path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const odirect = require(path.join(root, 'dist/index.js'));
const scratchfs = require(path.join(root, 'dist/scratch/scratchfs.js'));
const { uringEngine } = require(path.join(root, 'dist/engines/uring.js'));

const kind = process.argv[2] ?? 'xfs';
const op = process.argv[3] ?? 'write';
const seconds = Number(process.argv[4] ?? 4);
const DEPTH = op.endsWith('Sync') ? 1 : 32;
const BLOCK = 4096;
const FILE_BYTES = 256 << 20;
const BLOCKS = FILE_BYTES / BLOCK;

function randomBlock() {
  return Math.floor(Math.random() * BLOCKS) * BLOCK;
}

async function drive(label, io) {
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const deadline = t0 + BigInt(Math.round(seconds * 1e9));
  let ops = 0;
  const worker = async (buf) => {
    while (process.hrtime.bigint() < deadline) {
      for (let i = 0; i < 64; i++) {
        await io(buf, randomBlock());
        ops++;
      }
    }
  };
  const buffers = Array.from({ length: DEPTH }, () => {
    const b = odirect.alignedBuffer(BLOCK);
    randomFillSync(b);
    return b;
  });
  await Promise.all(buffers.map((b) => worker(b)));
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  const c = process.cpuUsage(cpu0);
  const line = `${label.padEnd(34)} ${String(Math.round(ops / s)).padStart(7)} IOPS  CPU ${((c.user + c.system) / ops).toFixed(2)} µs/IO (user ${(c.user / ops).toFixed(2)}, sys ${(c.system / ops).toFixed(2)})`;
  console.log(line);
}

function driveSync(label, io) {
  const buf = odirect.alignedBuffer(BLOCK);
  randomFillSync(buf);
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const deadline = t0 + BigInt(Math.round(seconds * 1e9));
  const lat = [];
  while (process.hrtime.bigint() < deadline) {
    for (let i = 0; i < 64; i++) {
      const a = process.hrtime.bigint();
      io(buf, randomBlock());
      lat.push(Number(process.hrtime.bigint() - a));
    }
  }
  const s = Number(process.hrtime.bigint() - t0) / 1e9;
  const c = process.cpuUsage(cpu0);
  lat.sort((x, y) => x - y);
  console.log(`${label.padEnd(34)} ${String(Math.round(lat.length / s)).padStart(7)} IOPS  p50 ${(lat[lat.length >> 1] / 1000).toFixed(1)} µs  CPU ${((c.user + c.system) / lat.length).toFixed(2)} µs/IO`);
}

scratchfs.registerCleanupOnExit();
const scratch = await scratchfs.makeScratchFs({ kind, sizeMiB: 1024, label: 'profile' });
try {
  const file = path.join(scratch.mountpoint, 'data');
  const f = await odirect.open(file, { create: true, engine: 'uring' });
  try {
    // Lay the file out so every write is non-extending and lands on written blocks.
    const mib = odirect.alignedBuffer(1 << 20);
    randomFillSync(mib);
    for (let at = 0; at < FILE_BYTES; at += 1 << 20) await f.write(mib, at);
    await f.sync();
    const engine = uringEngine();
    if (op === 'write') {
      await drive(`bare engine writev qd${DEPTH}`, (b, at) => engine.writev(f.fd ?? f.file.fd, [b], at, 0));
      await drive(`DirectFile.write qd${DEPTH}`, (b, at) => f.write(b, at));
    } else if (op === 'read') {
      await drive(`bare engine readv qd${DEPTH}`, (b, at) => engine.readv(f.fd ?? f.file.fd, [b], at, 0));
      await drive(`DirectFile.read qd${DEPTH}`, (b, at) => f.read(b, at));
    } else if (op === 'writeSync') {
      await drive('DirectFile.write qd1', (b, at) => f.write(b, at));
      driveSync('DirectFile.writeSync', (b, at) => f.writeSync(b, at));
    } else if (op === 'readSync') {
      await drive('DirectFile.read qd1', (b, at) => f.read(b, at));
      driveSync('DirectFile.readSync', (b, at) => f.readSync(b, at));
    } else {
      throw new Error(`unknown op ${op}`);
    }
  } finally {
    await f.close();
  }
} finally {
  await scratchfs.removeScratchFs(scratch);
}
