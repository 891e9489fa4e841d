#!/usr/bin/env node
// `npm test` and `npm run bench`: everything a fresh machine needs, then the job.
//   1. system packages (xfsprogs, fio, build tools) via scripts/install-deps.sh.
//      Running one of the README's two commands is the request to set the machine up; the
//      bench itself (`odirect bench`) never installs anything unless given --install.
//   2. node_modules (npm ci: exactly the lockfile, which it never rewrites) when missing or
//      older than package-lock.json
//   3. build: the addon (node-gyp) and the TypeScript (dist/)
//   4. the job: vitest, or the bench suite
// Only node built-ins here: this runs before node_modules exists.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const [job, ...args] = process.argv.slice(2);

function run(cmd, argv, options = {}) {
  const r = spawnSync(cmd, argv, { cwd: root, stdio: 'inherit', ...options });
  if (r.error) throw r.error;
  if (r.signal) process.kill(process.pid, r.signal);
  return r.status ?? 1;
}

function step(title, cmd, argv) {
  process.stderr.write(`\n== ${title}\n`);
  const status = run(cmd, argv);
  if (status !== 0) {
    process.stderr.write(`odirect: '${title}' failed (exit ${status})\n`);
    process.exit(status);
  }
}

function modulesStale() {
  const marker = join(root, 'node_modules', '.package-lock.json');
  if (!existsSync(marker)) return true;
  if (statSync(join(root, 'package-lock.json')).mtimeMs > statSync(marker).mtimeMs) return true;
  // The mtimes can miss a dependency added by a merge (npm rewrites the marker too, e.g. on
  // `npm install --package-lock-only`): every direct dependency must also be there.
  const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'));
  const names = Object.keys({ ...pkg.dependencies, ...pkg.devDependencies });
  return names.some((name) => !existsSync(join(root, 'node_modules', name, 'package.json')));
}

if (job !== 'test' && job !== 'bench') {
  process.stderr.write('usage: node scripts/run.mjs test|bench [args…]\n');
  process.exit(2);
}

step('system packages', 'bash', [join(root, 'scripts', 'install-deps.sh')]);
// Scripts are ignored here and the addon built explicitly below, so a stale
// prebuild can never stand in for the code in this checkout.
if (modulesStale()) step('node modules', 'npm', ['ci', '--ignore-scripts', '--no-audit', '--no-fund']);
step('build native addon', 'npm', ['run', 'build:native', '--silent']);
step('build TypeScript', 'npm', ['run', 'build:ts', '--silent']);

if (job === 'test') {
  process.stderr.write('\n== tests\n');
  process.exit(run(join(root, 'node_modules', '.bin', 'vitest'), ['run', ...args]));
} else {
  process.stderr.write('\n== bench\n');
  process.exit(run(process.execPath, [join(root, 'dist', 'cli.js'), 'bench', ...args]));
}
