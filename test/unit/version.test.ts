/** VERSION (shown on $SYS/broker/version) is package.json's version. */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { VERSION } from '../../src/version.js';

test('VERSION equals the version in package.json', () => {
  // Tests run compiled, from build/test/unit/: three levels up is the repository root.
  const pkg = JSON.parse(readFileSync(fileURLToPath(new URL('../../../package.json', import.meta.url)), 'utf8')) as { version: string };
  assert.equal(VERSION, pkg.version);
});
