#!/usr/bin/env node
// Microbench of the copy route for caller memory (docs/memory.md): the same
// writes and reads from odirect memory (zero-copy) and from caller memory
// (aligned, so the only difference is the copy through the bounce pool), on
// both engines, to a page-cache file (buffered: the copy is not hidden behind
// device time). Prints µs per op, medians of 5 rounds.
//   usage: node scripts/microbench-copy.mjs [dir]   (after npm run build)
import { createRequire } from 'node:module';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const require = createRequire(import.meta.url);
const root = path.join(path.dirname(new URL(import.meta.url).pathname), '..');
const { alignedBuffer } = require(path.join(root, 'dist', 'index.js'));
const { C, native } = require(path.join(root, 'dist', 'native.js'));
const { threadPoolEngine } = require(path.join(root, 'dist', 'engines', 'threadpool.js'));
const { uringEngine } = require(path.join(root, 'dist', 'engines', 'uring.js'));

const dir = process.argv[2] ?? os.tmpdir();
const file = path.join(dir, `odirect-copy-bench-${process.pid}`);
const fd = native.openSync(file, C.O_RDWR | C.O_CREAT | C.O_TRUNC, 0o600);

function callerAligned(size) {
  const ab = new ArrayBuffer(size + 4096);
  const skip = (4096 - native.addressModulo(new Uint8Array(ab), 4096)) % 4096;
  return new Uint8Array(ab, skip, size);
}

async function time(engine, op, buffer, ops) {
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < ops; i++) {
    if (op === 'write') await engine.writev(fd, [buffer], 0, 0);
    else await engine.readv(fd, [buffer], 0, 0);
  }
  return Number(process.hrtime.bigint() - t0) / 1000 / ops;
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const rows = [];
for (const [engineName, engine] of [['threadpool', threadPoolEngine], ['uring', uringEngine()]]) {
  for (const size of [4096, 1 << 20]) {
    const ops = size === 4096 ? 4000 : 300;
    native.pwritev2Sync(fd, [alignedBuffer(size)], 0, 0);
    for (const op of ['write', 'read']) {
      const owned = alignedBuffer(size);
      const caller = callerAligned(size);
      await time(engine, op, owned, ops / 10); // warm-up
      await time(engine, op, caller, ops / 10);
      const a = [];
      const b = [];
      for (let round = 0; round < 5; round++) {
        a.push(await time(engine, op, owned, ops));
        b.push(await time(engine, op, caller, ops));
      }
      rows.push({ engine: engineName, op, size: size === 4096 ? '4 KiB' : '1 MiB', ownedUs: median(a), callerUs: median(b) });
    }
  }
}
native.closeSync(fd);
fs.rmSync(file, { force: true });
console.log('engine      op     size   owned µs/op  caller µs/op  extra µs/op');
for (const r of rows) {
  console.log(
    `${r.engine.padEnd(11)} ${r.op.padEnd(6)} ${r.size.padEnd(6)} ${r.ownedUs.toFixed(1).padStart(11)} ${r.callerUs.toFixed(1).padStart(13)} ${(r.callerUs - r.ownedUs).toFixed(1).padStart(12)}`,
  );
}
