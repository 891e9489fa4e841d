// What ships is the library: `require('odirect')` loads the library and nothing else
// (no bench, no scratch-filesystem harness, no verify-atomic), in a fresh process.
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';

const root = path.resolve(__dirname, '..');

function loadedModules(entry: string): string[] {
  const script = `require(${JSON.stringify(entry)}); process.stdout.write(JSON.stringify(Object.keys(require.cache)));`;
  const out = execFileSync(process.execPath, ['-e', script], { cwd: root, encoding: 'utf8' });
  return (JSON.parse(out) as string[]).map((f) => path.relative(root, f));
}

describe("require('odirect')", () => {
  it('loads no bench, scratch or verify module', () => {
    const loaded = loadedModules(path.join(root, 'dist', 'index.js'));
    // It did load the library: the entry point, the file API and the policies.
    expect(loaded).toContain(path.join('dist', 'index.js'));
    expect(loaded).toContain(path.join('dist', 'file.js'));
    const offending = loaded.filter((f) => /(^|\/)(bench|scratch|verify)(\/|$)|cli\.js$/.test(f));
    expect(offending).toEqual([]);
  });

  it('resolves by package name to the same entry point', () => {
    const loaded = loadedModules('odirect');
    expect(loaded).toContain(path.join('dist', 'index.js'));
    expect(loaded.filter((f) => /(^|\/)(bench|scratch|verify)(\/|$)/.test(f))).toEqual([]);
  });
});
