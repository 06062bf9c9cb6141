/**
 * The module boundaries of docs/architecture.md are lint rules; these tests prove the rules bite,
 * so a boundary cannot silently stop being checked.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ESLint } from 'eslint';

const eslint = new ESLint({ cwd: process.cwd() });

async function violations(filePath: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath });
  return (result?.messages ?? []).filter((m) => m.ruleId === 'no-restricted-imports').map((m) => m.message);
}

describe('module boundaries', () => {
  test('src/protocol/ may import only node:buffer and its own files', async () => {
    assert.equal((await violations('src/protocol/probe.ts', "import { Buffer } from 'node:buffer';\nexport const b = Buffer;\n")).length, 0);
    assert.equal((await violations('src/protocol/probe.ts', "import { EventEmitter } from 'node:events';\nexport const e = EventEmitter;\n")).length, 1);
    assert.equal((await violations('src/protocol/probe.ts', "import { BrokerCore } from '../broker/broker.js';\nexport const b = BrokerCore;\n")).length, 1);
    const inPackets = 'src/protocol/packets/probe.ts';
    assert.equal((await violations(inPackets, "import { Reader } from '../primitives.js';\nexport const r = Reader;\n")).length, 0);
    assert.equal((await violations(inPackets, "import { BrokerCore } from '../../broker/broker.js';\nexport const b = BrokerCore;\n")).length, 1);
    assert.equal((await violations(inPackets, "import { TopicTree } from '../../router/index.js';\nexport const t = TopicTree;\n")).length, 1);
  });

  for (const folder of ['broker', 'session', 'router', 'config', 'auth', 'observability', 'bench']) {
    test(`src/${folder}/ may not import node:net, node:tls or ws`, async () => {
      for (const mod of ['node:net', 'node:tls', 'ws']) {
        const found = await violations(`src/${folder}/probe.ts`, `import * as m from '${mod}';\nexport const x = m;\n`);
        assert.equal(found.length, 1, `${folder} importing ${mod}`);
      }
    });
  }

  test('src/transport/ may import node:net and ws', async () => {
    assert.equal((await violations('src/transport/probe.ts', "import * as net from 'node:net';\nimport * as ws from 'ws';\nexport const x = [net, ws];\n")).length, 0);
  });

  test('src/broker/ may not import transports', async () => {
    assert.equal((await violations('src/broker/probe.ts', "import { listen } from '../transport/listener.js';\nexport const l = listen;\n")).length, 1);
    // The connection metadata types are the one thing the broker takes from transport/.
    assert.equal((await violations('src/broker/probe.ts', "import type { ConnectionMeta } from '../transport/types.js';\nexport type M = ConnectionMeta;\n")).length, 0);
  });

  test('src/client/ may import the dialers of transport/dial.ts, and no other transport', async () => {
    assert.equal((await violations('src/client/probe.ts', "import { dial } from '../transport/dial.js';\nexport const d = dial;\n")).length, 0);
    assert.equal((await violations('src/client/probe.ts', "import { listen } from '../transport/listener.js';\nexport const l = listen;\n")).length, 1);
    assert.equal((await violations('src/client/probe.ts', "import * as net from 'node:net';\nexport const n = net;\n")).length, 1);
  });
});
