// The bench installs no system packages unless asked (--install).
import { describe, expect, it } from 'vitest';
import { parseOptions } from '../../bench/src/options';

describe('odirect bench options', () => {
  it('installs nothing by default', () => {
    expect(parseOptions([], '/pkg').install).toBe(false);
    expect(parseOptions(['--quick'], '/pkg').install).toBe(false);
  });

  it('--install asks for it; --no-install (the old spelling) keeps it off', () => {
    expect(parseOptions(['--install'], '/pkg').install).toBe(true);
    expect(parseOptions(['--no-install'], '/pkg').install).toBe(false);
    expect(parseOptions(['--install', '--no-install'], '/pkg').install).toBe(false);
  });
});
