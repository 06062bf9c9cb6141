/** Result records and their rendering as Markdown tables, brokers side by side. */
import type { BrokerName } from './brokers.js';
import type { FlowResult, ScenarioName } from './common.js';

export interface FlowRecord extends FlowResult {
  brokerCpuSec: number;
  brokerCpuUsPerMsg: number;
  /** Broker CPU time over the window's wall time: near 1.0 means the broker was saturated. */
  brokerCpuShare: number;
  brokerRssMiB: number;
}

export interface StormRecord {
  clients: number;
  connected: number;
  failed: number;
  seconds: number;
  connectsPerSec: number;
  rssBeforeMiB: number;
  rssAfterMiB: number;
  rssPerConnKiB: number;
  brokerCpuSec: number;
  generatorCpuSec: number;
}

export interface RunRecord {
  broker: BrokerName;
  scenario: ScenarioName;
  qos: 0 | 1 | undefined;
  /** 1-minute load average of the machine when the run started (the host may be shared). */
  load1: number;
  error?: string;
  flow?: FlowRecord;
  storm?: StormRecord;
}

interface Row {
  label: string;
  value: (r: RunRecord) => number | undefined;
  digits: number;
  /** Show Petrel/other ratios for this row. */
  ratio?: boolean;
}

const FLOW_ROWS: Row[] = [
  { label: 'delivered msg/s', value: (r) => r.flow?.deliveredPerSec, digits: 0, ratio: true },
  { label: 'latency p50 (ms)', value: (r) => r.flow?.latencyP50Ms, digits: 2 },
  { label: 'latency p99 (ms)', value: (r) => r.flow?.latencyP99Ms, digits: 2 },
  { label: 'broker CPU µs/msg', value: (r) => r.flow?.brokerCpuUsPerMsg, digits: 2, ratio: true },
  { label: 'broker CPU share', value: (r) => r.flow?.brokerCpuShare, digits: 2 },
  { label: 'broker RSS (MiB)', value: (r) => r.flow?.brokerRssMiB, digits: 1 },
  { label: 'delivered (total)', value: (r) => r.flow?.delivered, digits: 0 },
  { label: 'lost deliveries', value: (r) => r.flow?.lost, digits: 0 },
  { label: 'generator CPU share', value: (r) => r.flow?.generatorCpuShare, digits: 2 },
];

const STORM_ROWS: Row[] = [
  { label: 'connected', value: (r) => r.storm?.connected, digits: 0 },
  { label: 'connects/s', value: (r) => r.storm?.connectsPerSec, digits: 0, ratio: true },
  { label: 'broker RSS idle (MiB)', value: (r) => r.storm?.rssBeforeMiB, digits: 1 },
  { label: 'broker RSS connected (MiB)', value: (r) => r.storm?.rssAfterMiB, digits: 1 },
  { label: 'RSS per connection (KiB)', value: (r) => r.storm?.rssPerConnKiB, digits: 1, ratio: true },
  { label: 'broker CPU (s)', value: (r) => r.storm?.brokerCpuSec, digits: 2 },
  { label: 'generator CPU (s, 4 procs)', value: (r) => r.storm?.generatorCpuSec, digits: 2 },
];

function fmt(v: number | undefined, digits: number): string {
  if (v === undefined || !Number.isFinite(v)) return '–';
  return v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function ratio(a: number | undefined, b: number | undefined): string {
  if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0) return '–';
  return `${(a / b).toFixed(2)}×`;
}

export function title(scenario: ScenarioName, qos: 0 | 1 | undefined): string {
  const names: Record<ScenarioName, string> = {
    fanout: 'Fan-out: 10 publishers, 128 topics, 512 subscribers (4 per topic)',
    fanin: 'Fan-in: 2000 publishers, 1 subscriber on #',
    p2p: 'Point-to-point: 4 publishers → 4 subscribers',
    storm: `Connection storm: ${Number(process.env.BENCH_STORM_CLIENTS ?? 19_000).toLocaleString('en-US')} clients`,
  };
  return qos === undefined ? names[scenario] : `${names[scenario]}, QoS ${qos}`;
}

/** One Markdown table for one scenario (and QoS), brokers as columns. */
export function table(records: RunRecord[], brokers: readonly BrokerName[]): string {
  const first = records[0];
  if (first === undefined) return '';
  const by = (b: BrokerName): RunRecord | undefined => records.find((r) => r.broker === b);
  const rows = first.scenario === 'storm' ? STORM_ROWS : FLOW_ROWS;
  const showRatios = brokers.includes('petrel') && brokers.length > 1;
  const others = brokers.filter((b) => b !== 'petrel');
  const head = ['', ...brokers, ...(showRatios ? others.map((o) => `petrel/${o}`) : [])];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`];
  for (const row of rows) {
    const cells = brokers.map((b) => {
      const r = by(b);
      if (r === undefined) return 'not run';
      if (r.error !== undefined) return 'failed';
      return fmt(row.value(r), row.digits);
    });
    if (showRatios) {
      const p = by('petrel');
      for (const o of others) {
        const other = by(o);
        cells.push(row.ratio === true && p !== undefined && other !== undefined ? ratio(row.value(p), row.value(other)) : '');
      }
    }
    lines.push(`| ${row.label} | ${cells.join(' | ')} |`);
  }
  const errors = records.filter((r) => r.error !== undefined).map((r) => `${r.broker}: ${r.error}`);
  return lines.join('\n') + (errors.length > 0 ? `\n\nFailures: ${errors.join('; ')}` : '');
}

/** All tables, in scenario order. */
export function report(records: RunRecord[], brokers: readonly BrokerName[]): string {
  const keys: string[] = [];
  for (const r of records) {
    const k = `${r.scenario}:${r.qos ?? ''}`;
    if (!keys.includes(k)) keys.push(k);
  }
  return keys.map((k) => {
    const group = records.filter((r) => `${r.scenario}:${r.qos ?? ''}` === k);
    const g0 = group[0] as RunRecord;
    return `#### ${title(g0.scenario, g0.qos)}\n\n${table(group, brokers)}\n`;
  }).join('\n');
}
