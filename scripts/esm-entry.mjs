// Writes dist/index.mjs: an ES module that re-exports the CommonJS build by
// name, so `import { open } from 'odirect'` and `require('odirect')` load the
// same module instance (one addon, one io_uring per thread).
import { createRequire } from 'node:module';
import { writeFileSync } from 'node:fs';

const require = createRequire(import.meta.url);
const api = require('../dist/index.js');
const names = Object.keys(api).filter((n) => n !== 'default' && n !== '__esModule');
const body = [
  "import api from './index.js';",
  ...names.map((n) => `export const ${n} = api.${n};`),
  'export default api;',
  '',
].join('\n');
writeFileSync(new URL('../dist/index.mjs', import.meta.url), body);
