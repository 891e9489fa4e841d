/**
 * The README's tour, exactly as written (the first ```ts block under "## A short tour"),
 * run as a user would run it (`node tour.mjs DIR`, importing 'odirect' by name) on ext4,
 * XFS and tmpfs. It must run unchanged on all three.
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import ts from 'typescript';
import { afterAll, describe, expect, it } from 'vitest';
import { describeOnFs, uniqueDir } from './helpers/scratch';

const ROOT = path.resolve(__dirname, '..');

function tourSource(): string {
  const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('\n## A short tour'));
  const m = /```ts\n([\s\S]*?)```/.exec(section);
  if (!m) throw new Error('README.md has no ```ts block under "## A short tour"');
  return m[1]!;
}

// A project of its own, where `import … from 'odirect'` resolves to this checkout.
const project = fs.mkdtempSync(path.join(os.tmpdir(), 'odirect-readme-'));
fs.mkdirSync(path.join(project, 'node_modules'));
fs.symlinkSync(ROOT, path.join(project, 'node_modules', 'odirect'));
const script = path.join(project, 'tour.mjs');
// TypeScript to JavaScript only (the tour has no types, so this changes nothing that runs).
fs.writeFileSync(script, ts.transpileModule(tourSource(), { compilerOptions: { module: ts.ModuleKind.ESNext, target: ts.ScriptTarget.ES2022 } }).outputText);
afterAll(() => fs.rmSync(project, { recursive: true, force: true }));

function runTour(dir: string, fsType: string): void {
  if (!fs.existsSync(path.join(ROOT, 'dist', 'index.mjs'))) throw new Error('dist/ is missing: npm test builds it first');
  const r = spawnSync(process.execPath, [script, dir], { cwd: project, encoding: 'utf8', timeout: 120_000 });
  expect(r.error).toBeUndefined();
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  const out = r.stdout.trim().split('\n');
  const [type, direct, atomic] = out[0]!.split(' ');
  expect(type).toBe(fsType);
  expect(out.at(-1)).toBe('heltiny');
  expect(r.stdout).toMatch(new RegExp(`bytesWritten: 4096, path: '${direct === 'true' ? 'direct' : 'buffered'}'`));
  // What the kernel has: 'heltiny' at 0, the dsync page at 8192, 8 MiB of zeros from 1 MiB.
  const onDisk = fs.readFileSync(path.join(dir, 'tour.dat'));
  expect(onDisk.length).toBe((1 << 20) + (8 << 20));
  expect(onDisk.subarray(0, 7).toString()).toBe('heltiny');
  expect(onDisk.subarray(8192, 8197).toString()).toBe('hello');
  expect(onDisk.subarray(1 << 20).every((b) => b === 0)).toBe(true);
  if (fsType === 'xfs') expect(atomic).toBe('true'); // the branch with writeAtomic ran
  if (fsType === 'tmpfs') expect([direct, atomic]).toEqual(['false', 'false']);
}

describe('README tour', () => {
  it('is a ```ts block that imports odirect by name', () => {
    expect(tourSource()).toMatch(/from 'odirect'/);
  });
});

describeOnFs('ext4', 'README tour on ext4', (mount) => {
  it('runs unchanged', () => runTour(uniqueDir(mount, 'readme-tour'), 'ext4'));
});

describeOnFs('xfs', 'README tour on XFS', (mount) => {
  it('runs unchanged, atomic write included', () => runTour(uniqueDir(mount, 'readme-tour'), 'xfs'));
});

describeOnFs('tmpfs', 'README tour on tmpfs', (mount) => {
  it('runs unchanged, without O_DIRECT or atomic writes', () => runTour(uniqueDir(mount, 'readme-tour'), 'tmpfs'));
});
