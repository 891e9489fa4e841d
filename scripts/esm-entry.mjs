// Writes dist/index.mjs: an ES module that re-exports the CommonJS build by
// name, so `import { open } from 'odirect'` and `require('odirect')` load the
// same module instance (one addon, one io_uring per thread).
// The names are read from dist/index.js as tsc emits them, without loading it:
// loading it loads the native addon, which a TypeScript build must not need
// (npm pack's prepack and git installs build dist/ before any addon exists).
import { readFileSync, writeFileSync } from 'node:fs';

const cjs = readFileSync(new URL('../dist/index.js', import.meta.url), 'utf8');
const names = new Set();
// `export { open } from './file'` → Object.defineProperty(exports, "open", { enumerable: true, get: … })
for (const m of cjs.matchAll(/Object\.defineProperty\(exports, "([A-Za-z_$][\w$]*)", \{ enumerable: true, get/g)) names.add(m[1]);
// `export const x = …` / `export function x` → exports.x = …
for (const m of cjs.matchAll(/\bexports\.([A-Za-z_$][\w$]*) = /g)) names.add(m[1]);
names.delete('__esModule');
if (names.size === 0) throw new Error('esm-entry: found no exports in dist/index.js');
const body = [
  "import api from './index.js';",
  ...[...names].map((n) => `export const ${n} = api.${n};`),
  'export default api;',
  '',
].join('\n');
writeFileSync(new URL('../dist/index.mjs', import.meta.url), body);
