import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import { promisify } from 'node:util';

const run = promisify(execFile);

test('the README embedding example is examples/embed.mjs and runs as written', async () => {
  const example = readFileSync('examples/embed.mjs', 'utf8');
  assert.ok(readFileSync('README.md', 'utf8').includes(example), 'README shows examples/embed.mjs verbatim');
  const { stdout } = await run(process.execPath, ['examples/embed.mjs'], { timeout: 20_000 });
  assert.match(stdout, /^listening on \d+$/m);
  assert.match(stdout, /^published greetings hello$/m);
  assert.match(stdout, /^receivers 0$/m);
});
