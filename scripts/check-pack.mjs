#!/usr/bin/env node
// npm's prepack step (after the TypeScript build): refuses to pack a tarball that could not
// work when installed, i.e. one without dist/ or without a prebuild for linux-x64. A tarball
// without prebuilds would compile on every install; one without dist/ cannot be loaded.
// Make the prebuilds with `npm run build:prebuild`.
import { existsSync, readdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const problems = [];
for (const f of ['dist/index.js', 'dist/index.mjs', 'dist/index.d.ts', 'dist/cli.js']) {
  if (!existsSync(join(root, f))) problems.push(`${f} is missing (npm run build:ts)`);
}
const x64 = join(root, 'prebuilds', 'linux-x64');
const prebuilds = existsSync(x64) ? readdirSync(x64).filter((f) => f.endsWith('.node')) : [];
if (!prebuilds.some((f) => f.includes('glibc'))) {
  problems.push('prebuilds/linux-x64 has no glibc prebuild (npm run build:prebuild)');
}
if (problems.length) {
  process.stderr.write(`odirect: refusing to pack:\n${problems.map((p) => `  ${p}\n`).join('')}`);
  process.exit(1);
}
process.stderr.write(`odirect: packing dist/ and prebuilds/linux-x64/${prebuilds.join(', ')}\n`);
