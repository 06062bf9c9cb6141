/**
 * ops/grafana/petrel-dashboard.json: valid JSON, and every metric its queries name is in what a
 * real broker's render() returns (a broker with a store and a client, so the store metrics and
 * the per-listener series are there too).
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { BrokerCore } from '../../../src/broker/broker.js';
import { MemoryStore } from '../../../src/persistence/memory.js';
import { createMetrics } from '../../../src/ops/metrics.js';
import { TestClient } from '../../helpers/duplex-client.js';
import { parseExposition } from '../../helpers/prometheus.js';

/** Tests run compiled, from build/test/unit/ops/: four levels up is the repository root. */
const DASHBOARD = fileURLToPath(new URL('../../../../ops/grafana/petrel-dashboard.json', import.meta.url));

interface Target { expr?: unknown }
interface Panel { type?: unknown; title?: unknown; targets?: Target[]; panels?: Panel[] }

/** The metric names of a PromQL expression: identifiers that are not functions, keywords, label names or strings. */
export function metricNames(expr: string): string[] {
  const bare = expr
    .replace(/"(?:[^"\\]|\\.)*"/g, '""')
    .replace(/\{[^}]*\}/g, '')
    .replace(/\[[^\]]*\]/g, '')
    .replace(/\b(by|without)\s*\([^)]*\)/g, '');
  const out: string[] = [];
  for (const m of bare.matchAll(/[a-zA-Z_:][a-zA-Z0-9_:]*/g)) {
    const rest = bare.slice((m.index as number) + m[0].length);
    if (/^\s*\(/.test(rest)) continue; // a function call
    if (/^(and|or|unless|bool|on|ignoring|group_left|group_right|offset)$/.test(m[0])) continue;
    out.push(m[0]);
  }
  return out;
}

function exprsOf(dashboard: { panels?: Panel[]; templating?: { list?: { query?: unknown }[] } }): string[] {
  const out: string[] = [];
  const visit = (panels: Panel[] | undefined): void => {
    for (const p of panels ?? []) {
      for (const t of p.targets ?? []) if (typeof t.expr === 'string') out.push(t.expr);
      visit(p.panels);
    }
  };
  visit(dashboard.panels);
  for (const v of dashboard.templating?.list ?? []) {
    const q = typeof v.query === 'object' && v.query !== null ? (v.query as { query?: unknown }).query : undefined;
    // label_values(metric{...}, label): the metric is the first argument.
    if (typeof q === 'string') {
      const m = /label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)/.exec(q);
      if (m !== null) out.push(m[1] as string);
    }
  }
  return out;
}

describe('the Grafana dashboard', () => {
  test('metricNames reads PromQL as expected', () => {
    assert.deepEqual(metricNames('histogram_quantile(0.99, sum by (le, hook) (rate(a_bucket{job=~"$job"}[$__rate_interval])))'), ['a_bucket']);
    assert.deepEqual(metricNames('sum(rate(x_total{type="publish"}[5m])) / sum(rate(y_count[5m]))'), ['x_total', 'y_count']);
  });

  test('every metric in its expressions exists in a real render() output', async (t) => {
    const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { title?: unknown; panels?: Panel[] };
    assert.equal(typeof dashboard.title, 'string');
    const exprs = exprsOf(dashboard);
    assert.ok(exprs.length >= 30, `${exprs.length} expressions`);

    const broker = new BrokerCore({ store: new MemoryStore(), sys: { enabled: false } });
    t.after(() => broker.closeConnections());
    await broker.restore();
    // A connected client: the per-listener series exist once someone connected.
    await TestClient.connect(broker, { clientId: 'dash', version: 5 });
    const rendered = parseExposition(await createMetrics(broker).render());
    const names = new Set(rendered.samples.map((s) => s.name));
    const used = new Set(exprs.flatMap(metricNames));
    assert.ok(used.size >= 25, `${used.size} metrics used`);
    const missing = [...used].filter((n) => !names.has(n));
    assert.deepEqual(missing, [], 'metrics the dashboard asks for that render() does not have');
  });

  test('every panel but the rows queries something', () => {
    const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as { panels: Panel[] };
    for (const p of dashboard.panels) {
      if (p.type === 'row') continue;
      assert.ok((p.targets ?? []).length > 0, `panel ${String(p.title)} has targets`);
    }
  });
});
