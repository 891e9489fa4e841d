/**
 * The command line: --help/--version conventions, unknown commands, verify-atomic's
 * UNSUPPORTED verdict and exit status, its progress on stderr, and what probe creates.
 */
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { describeOnFs, uniqueDir } from './helpers/scratch';

const CLI = path.join(__dirname, '..', 'dist', 'cli.js');
const VERSION = (JSON.parse(fs.readFileSync(path.join(__dirname, '..', 'package.json'), 'utf8')) as { version: string }).version;

function odirect(args: string[], opts: SpawnSyncOptions = {}) {
  if (!fs.existsSync(CLI)) throw new Error('dist/ is missing: npm test builds it first');
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 120_000, ...opts });
  if (r.error) throw r.error;
  return { status: r.status, stdout: String(r.stdout), stderr: String(r.stderr) };
}

describe('odirect CLI conventions', () => {
  it.each(
    [['--help'], ['-h'], ['help'], ['probe', '--help'], ['verify-atomic', '--help'], ['verify-atomic', '-h'], ['bench', '--help']].map(
      (args) => [args.join(' '), args] as const,
    ),
  )(
    'odirect %s prints usage to stdout and exits 0',
    (_title, args) => {
      const r = odirect([...args]);
      expect(r.status).toBe(0);
      expect(r.stdout).toMatch(/^usage: odirect/);
      expect(r.stderr).toBe('');
    },
  );

  it('--version and -v print the package version', () => {
    for (const flag of ['--version', '-v']) {
      const r = odirect([flag]);
      expect(r.status).toBe(0);
      expect(r.stdout).toBe(`${VERSION}\n`);
    }
  });

  it('an unknown command is named, with the nearest one, and exits 2', () => {
    const r = odirect(['prob']);
    expect(r.status).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/^odirect: unknown command 'prob' \(did you mean 'probe'\?\)/);
    const far = odirect(['frobnicate']);
    expect(far.status).toBe(2);
    expect(far.stderr).toMatch(/^odirect: unknown command 'frobnicate'\n/);
  });

  it('no command, or a bad option, is a usage error on stderr with exit 2', () => {
    const none = odirect([]);
    expect(none.status).toBe(2);
    expect(none.stdout).toBe('');
    expect(none.stderr).toMatch(/usage: odirect/);
    const bad = odirect(['verify-atomic', '/tmp', '--secnds', '3']);
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--secnds/);
    const extra = odirect(['probe', '/tmp', '/var']);
    expect(extra.status).toBe(2);
    expect(extra.stderr).toMatch(/probe takes one PATH \(got 2\)/);
  });

  it('verify-atomic --help documents every exit status', () => {
    const r = odirect(['verify-atomic', '--help']);
    expect(r.stdout).toMatch(/0 +PASS/);
    expect(r.stdout).toMatch(/1 +FAIL/);
    expect(r.stdout).toMatch(/2 +usage error/);
    expect(r.stdout).toMatch(/3 +UNSUPPORTED/);
  });
});

/** verify-atomic on `dir`, checking the exit status, the verdict line and the progress lines. */
function verifyOn(dir: string, seconds: number) {
  const r = odirect(['verify-atomic', dir, '--seconds', String(seconds)]);
  const verdict = r.stdout.trim().split('\n').at(-1)!;
  const progress = r.stderr.split('\n').filter((l) => l.startsWith('verify-atomic: '));
  return { ...r, verdict, progress };
}

describe('verify-atomic on a filesystem without atomic writes: UNSUPPORTED, exit 3', () => {
  it('tmpfs', () => {
    const dir = fs.mkdtempSync(path.join(fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir(), 'odirect-cli-'));
    try {
      const r = verifyOn(dir, 1);
      expect(r.status, r.stderr).toBe(3);
      expect(r.verdict).toMatch(/^verdict: UNSUPPORTED: tmpfs at .* has no atomic writes/);
      expect(r.stdout).not.toMatch(/PASS/);
      expect(r.progress[0]).toMatch(/^verify-atomic: \d+\.\d s {2}probe$/);
      expect(r.progress).toContainEqual(expect.stringMatching(/ rules$/));
      expect(fs.readdirSync(dir)).toEqual([]); // its scratch files are gone
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

describeOnFs('ext4', 'verify-atomic on ext4 (no atomic-capable device)', (mount) => {
  it('UNSUPPORTED, exit 3, never PASS', () => {
    const dir = uniqueDir(mount, 'cli-verify');
    const r = verifyOn(dir, 1);
    // A loop device has no hardware atomic writes, so ext4 on it has none either.
    expect(r.status, r.stderr).toBe(3);
    expect(r.verdict).toMatch(/^verdict: UNSUPPORTED: ext4 at /);
  });
});

describeOnFs('xfs', 'verify-atomic on XFS (software atomic writes)', (mount) => {
  it('a PASS or FAIL verdict (never UNSUPPORTED) with its exit status, the torn hunt counting on stderr', () => {
    const dir = uniqueDir(mount, 'cli-verify');
    const r = verifyOn(dir, 3);
    // Whether the hunt passes is test/verify-atomic.test.ts's business (the XFS overlap
    // policy, issue 10); here: the verdict and the exit status agree.
    expect(r.verdict).toMatch(/^verdict: (PASS: atomic writes through odirect on .* \(xfs\) were all or nothing|FAIL: )/);
    expect(r.status, r.stdout + r.stderr).toBe(r.verdict.startsWith('verdict: PASS') ? 0 : 1);
    for (const phase of ['raw path', 'odirect path']) {
      const counting = new RegExp(` torn hunt, ${phase} {2}writes \\d+ reads \\d+ torn \\d+ zero \\d+ stale \\d+ corrupt \\d+$`);
      const hunt = r.progress.filter((l) => counting.test(l));
      expect(hunt.length, r.stderr).toBeGreaterThanOrEqual(1); // about once a second during a 3 s hunt
      const writes = hunt.map((l) => Number(/writes (\d+)/.exec(l)![1]));
      expect(writes.at(-1)!).toBeGreaterThan(0);
      expect([...writes].sort((a, b) => a - b)).toEqual(writes); // counts so far only grow
    }
  });
});

describe('probe says what it creates', () => {
  it('names its scratch file on stderr and removes it', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'odirect-cli-probe-'));
    try {
      const r = odirect(['probe', dir]);
      expect(r.status, r.stderr).toBe(0);
      expect(r.stderr).toBe(`odirect probe: testing with a scratch file ${path.join(dir, '.odirect-probe-*')}, removed after\n`);
      expect(JSON.parse(r.stdout)).toMatchObject({ path: dir, kind: 'directory' });
      expect(fs.readdirSync(dir)).toEqual([]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('in a directory it may not write to, the error names the file it tried to create', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'odirect-cli-ro-'));
    try {
      fs.chmodSync(dir, 0o555);
      // root ignores directory permissions: run as nobody then.
      const asUser = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
      const r = odirect(['probe', dir], asUser);
      expect(r.status).toBe(1);
      expect(r.stderr).toMatch(
        new RegExp(`EACCES: .*${dir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}/\\.odirect-probe-\\d+-[0-9a-f]{8} \\(probe's scratch file`),
      );
      expect(fs.readdirSync(dir)).toEqual([]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
