/**
 * Every example in examples/ runs as written (through the package's own exports, like a user's
 * code) and prints what it says it does.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { describe, test } from 'node:test';
import { promisify } from 'node:util';

const run = promisify(execFile);

const EXPECTED: Record<string, string[]> = {
  'custom-auth.mjs': [
    'mallory refused with 0x86',
    "alice publishing to bob's topic: 0x87",
    'bob got users/alice/shout/hello HELLO',
    'bob got users/alice/news public',
  ],
  'acl-file.mjs': [
    'viewer subscribing to sensors/#: SUBACK 0x87',
    'viewer subscribing to public/# and its own area: SUBACK 1,1',
    'gateway publishing to public/news: 0x87',
    'viewer got clients/viewer/notes mine',
  ],
  'plugin.mjs': ['new-app got v2/temperature 20', 'topic-rewrite: 1 messages rewritten'],
  'client.mjs': ['got sensors/temp 21.5', 'answer noon'],
  'local-client.mjs': ['retained: online', 'inbox: just for you', 'will: offline', 'sessions: monitor', 'listening on a free port'],
};

describe('examples/', () => {
  for (const [file, lines] of Object.entries(EXPECTED)) {
    test(`${file} runs and prints what it shows`, async () => {
      const { stdout } = await run(process.execPath, [`examples/${file}`], { timeout: 30_000 });
      assert.deepEqual(stdout.trimEnd().split('\n'), lines);
    });
  }
});
