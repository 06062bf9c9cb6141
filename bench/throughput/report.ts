/** Result records and their rendering: one row per broker run, plus the storm table and derived ratios. */
import type { BrokerName } from './brokers.js';
import type { BenchQoS, FlowResult, ScenarioName, Transport } from './common.js';

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
  qos: BenchQoS | undefined;
  protocol: 4 | 5 | undefined;
  /** 1-minute load average of the machine when the run started (the host may be shared). */
  load1: number;
  /** 1-minute load average when the run ended. */
  load1After?: number;
  /**
   * Share of the machine's CPU time that the hypervisor gave to others during the measured
   * seconds (steal time, /proc/stat), in percent: on a shared host the main cause of run-to-run
   * spread, most of all in runs bound by round trips rather than by CPU.
   */
  stealPct?: number;
  /** Runs made for this row (more than 1: the earlier ones had more steal, see BENCH_MAX_STEAL). */
  attempts?: number;
  error?: string;
  /** Why the run was not attempted (e.g. the broker lacks MQTT 5.0). */
  skipped?: string;
  flow?: FlowRecord;
  storm?: StormRecord;
}

export const SCENARIO_TITLES: Record<ScenarioName, string> = {
  p2p: 'point-to-point 4→4',
  'p2p-tls': 'point-to-point 4→4, TLS',
  'p2p-ws': 'point-to-point 4→4, WebSocket',
  'p2p-wss': 'point-to-point 4→4, WebSocket over TLS',
  fanout: 'fan-out 10→128 topics→512',
  'fanout-tls': 'fan-out 10→128 topics→512, TLS',
  'fanout-ws': 'fan-out 10→128 topics→512, WebSocket',
  'fanout-wss': 'fan-out 10→128 topics→512, WebSocket over TLS',
  fanin: 'fan-in 2000→1 (#)',
  rate: 'fixed rate 10×100/s→128 topics→2000',
  headline: '10→128 topics→2000, max rate',
  p2p5: 'point-to-point 4→4, alias max 10',
  'p2p5-expiry': 'point-to-point 4→4, alias max 10, expiry 60 s',
  fanout5: 'fan-out 10→128→512, alias max 10',
  'fanout5-expiry': 'fan-out 10→128→512, alias max 10, expiry 60 s',
  'p2p-durable': 'point-to-point 4→4, persistent sessions',
  'fanout-durable': 'fan-out 10→128 topics→512, persistent sessions',
  storm: 'connection storm',
};

export function protocolName(p: 4 | 5 | undefined): string {
  return p === 5 ? '5.0' : p === 4 ? '3.1.1' : '';
}

export function title(scenario: ScenarioName, qos: BenchQoS | undefined, protocol: 4 | 5 | undefined): string {
  const t = scenario === 'storm'
    ? `Connection storm: ${Number(process.env.BENCH_STORM_CLIENTS ?? 19_000).toLocaleString('en-US')} clients`
    : SCENARIO_TITLES[scenario];
  return qos === undefined ? t : `${t}, MQTT ${protocolName(protocol)}, QoS ${qos}`;
}

function fmt(v: number | undefined, digits: number): string {
  if (v === undefined || !Number.isFinite(v)) return '–';
  return v.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function ratio(a: number | undefined, b: number | undefined): string {
  if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0) return '–';
  return `${(a / b).toFixed(2)}×`;
}

const FLOW_HEAD = [
  'scenario', 'proto', 'QoS', 'broker', 'delivered/s', 'lost', 'dup', 'CPU µs/msg', 'CPU share',
  'p50 ms', 'p99 ms', 'max ms', 'p99 all ms', 'RSS MiB', 'gen CPU', 'load', 'steal %', 'rate P/M', 'µs/msg P/M',
];

const key = (r: RunRecord): string => `${r.scenario}:${r.qos ?? ''}`;

function flowCells(r: RunRecord, mosquitto: RunRecord | undefined): string[] {
  const head = [SCENARIO_TITLES[r.scenario], protocolName(r.protocol), String(r.qos ?? ''), r.broker];
  const load = `${fmt(r.load1, 1)}${r.load1After === undefined ? '' : `–${fmt(r.load1After, 1)}`}`;
  if (r.skipped !== undefined) return [...head, `not run: ${r.skipped}`, '', '', '', '', '', '', '', '', '', '', '', '', '', ''];
  const f = r.flow;
  if (f === undefined) return [...head, `failed: ${r.error ?? '?'}`, '', '', '', '', '', '', '', '', '', '', load, '', '', ''];
  const lost = f.lost > 0 ? `**${fmt(f.lost, 0)}** (${((100 * f.lost) / Math.max(1, f.expected)).toFixed(1)}%)` : '0';
  const dup = f.duplicates > 0 ? `**${fmt(f.duplicates, 0)}**` : '0';
  const m = r.broker === 'petrel' ? mosquitto?.flow : undefined;
  return [
    ...head, fmt(f.deliveredPerSec, 0), lost, dup, fmt(f.brokerCpuUsPerMsg, 2), fmt(f.brokerCpuShare, 2),
    fmt(f.latencyP50Ms, 2), fmt(f.latencyP99Ms, 2), fmt(f.latencyMaxMs, 1), fmt(f.latencyP99AllMs, 2), fmt(f.brokerRssMiB, 1),
    fmt(f.generatorCpuShare, 2), load,
    r.stealPct === undefined ? '' : `${fmt(r.stealPct, 1)}${(r.attempts ?? 1) > 1 ? ` (best of ${r.attempts})` : ''}`,
    m === undefined ? '' : ratio(f.deliveredPerSec, m.deliveredPerSec),
    m === undefined ? '' : ratio(f.brokerCpuUsPerMsg, m.brokerCpuUsPerMsg),
  ];
}

function mdTable(head: string[], rows: string[][], left = 4): string {
  const align = head.map((_, i) => (i < left ? '---' : '---:'));
  return [`| ${head.join(' | ')} |`, `|${align.join('|')}|`, ...rows.map((r) => `| ${r.join(' | ')} |`)].join('\n');
}

/** One row per flow run, in run order; Petrel rows carry Petrel/Mosquitto ratios. */
export function flowTable(records: RunRecord[]): string {
  const flows = records.filter((r) => r.scenario !== 'storm');
  if (flows.length === 0) return '';
  const rows = flows.map((r) => flowCells(r, flows.find((o) => o.broker === 'mosquitto' && key(o) === key(r))));
  return mdTable(FLOW_HEAD, rows);
}

/** Plain-text version of the flow table for the terminal (fixed-width columns). */
export function flowText(records: RunRecord[]): string {
  const flows = records.filter((r) => r.scenario !== 'storm');
  if (flows.length === 0) return '';
  const rows = [FLOW_HEAD, ...flows.map((r) => flowCells(r, flows.find((o) => o.broker === 'mosquitto' && key(o) === key(r))).map((c) => c.replaceAll('**', '')))];
  const widths = FLOW_HEAD.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows.map((r) => r.map((c, i) => (i < 4 ? c.padEnd(widths[i] ?? 0) : c.padStart(widths[i] ?? 0))).join('  ')).join('\n');
}

function flowOf(records: RunRecord[], broker: BrokerName, scenario: ScenarioName, qos: BenchQoS): FlowRecord | undefined {
  return records.find((r) => r.broker === broker && r.scenario === scenario && r.qos === qos)?.flow;
}

/** Headline QoS ratios and 5.0 / 3.1.1 CPU ratios, per broker, for whatever was run. */
export function ratioTables(records: RunRecord[], brokers: readonly BrokerName[]): string {
  const out: string[] = [];
  const headRows: string[][] = [];
  for (const b of brokers) {
    const q0 = flowOf(records, b, 'headline', 0);
    const q1 = flowOf(records, b, 'headline', 1);
    const q2 = flowOf(records, b, 'headline', 2);
    if (q0 === undefined && q1 === undefined && q2 === undefined) continue;
    headRows.push([b, fmt(q0?.deliveredPerSec, 0), fmt(q1?.deliveredPerSec, 0), fmt(q2?.deliveredPerSec, 0),
      ratio(q1?.deliveredPerSec, q0?.deliveredPerSec), ratio(q2?.deliveredPerSec, q0?.deliveredPerSec)]);
  }
  if (headRows.length > 0) {
    out.push(`Headline (${SCENARIO_TITLES.headline}), delivered/s by QoS:\n\n` +
      mdTable(['broker', 'QoS 0', 'QoS 1', 'QoS 2', 'QoS1/QoS0', 'QoS2/QoS0'], headRows, 1));
  }
  const pairs: [ScenarioName, ScenarioName][] = [['p2p5', 'p2p'], ['p2p5-expiry', 'p2p'], ['fanout5', 'fanout'], ['fanout5-expiry', 'fanout']];
  const v5Rows: string[][] = [];
  for (const b of brokers) {
    for (const [v5, v4] of pairs) {
      for (const q of [0, 1, 2] as const) {
        const a = flowOf(records, b, v5, q);
        const c = flowOf(records, b, v4, q);
        if (a === undefined || c === undefined) continue;
        v5Rows.push([b, `${SCENARIO_TITLES[v5]} vs 3.1.1`, String(q), fmt(a.brokerCpuUsPerMsg, 2), fmt(c.brokerCpuUsPerMsg, 2),
          ratio(a.brokerCpuUsPerMsg, c.brokerCpuUsPerMsg), ratio(a.deliveredPerSec, c.deliveredPerSec)]);
      }
    }
  }
  if (v5Rows.length > 0) {
    out.push('MQTT 5.0 against 3.1.1, broker CPU per delivered message:\n\n' +
      mdTable(['broker', 'scenario', 'QoS', '5.0 µs/msg', '3.1.1 µs/msg', '5.0/3.1.1 CPU', '5.0/3.1.1 rate'], v5Rows, 2));
  }
  return out.join('\n\n');
}

const TRANSPORT_SCENARIOS: readonly { shape: string; runs: readonly [Transport, ScenarioName][] }[] = [
  { shape: 'p2p', runs: [['tcp', 'p2p'], ['tls', 'p2p-tls'], ['ws', 'p2p-ws'], ['wss', 'p2p-wss']] },
  { shape: 'fanout', runs: [['tcp', 'fanout'], ['tls', 'fanout-tls'], ['ws', 'fanout-ws'], ['wss', 'fanout-wss']] },
];

/**
 * QoS 0 point-to-point and fan-out by transport, per broker: each transport's rate and broker
 * CPU per delivered message, and both against the same broker over TCP.
 */
export function transportTable(records: RunRecord[], brokers: readonly BrokerName[]): string {
  const rows: string[][] = [];
  for (const { shape, runs } of TRANSPORT_SCENARIOS) {
    // Only shapes run over some other transport than TCP.
    if (!runs.slice(1).some(([, s]) => records.some((o) => o.scenario === s))) continue;
    for (const b of brokers) {
      const tcp = flowOf(records, b, shape as ScenarioName, 0);
      for (const [transport, scenario] of runs) {
        const r = records.find((o) => o.broker === b && o.scenario === scenario && o.qos === 0);
        if (r === undefined) continue;
        const f = r.flow;
        const head = [SCENARIO_TITLES[shape as ScenarioName], b, transport];
        if (f === undefined) { rows.push([...head, r.skipped !== undefined ? `not run: ${r.skipped}` : `failed: ${r.error ?? '?'}`, '', '', '', '', '', '', '']); continue; }
        const lost = f.lost > 0 ? `**${fmt(f.lost, 0)}** (${((100 * f.lost) / Math.max(1, f.expected)).toFixed(1)}%)` : '0';
        const extra = tcp === undefined || transport === 'tcp' ? '' : `${f.brokerCpuUsPerMsg >= tcp.brokerCpuUsPerMsg ? '+' : ''}${fmt(f.brokerCpuUsPerMsg - tcp.brokerCpuUsPerMsg, 2)}`;
        rows.push([...head, fmt(f.deliveredPerSec, 0), lost, fmt(f.brokerCpuUsPerMsg, 2), extra,
          transport === 'tcp' ? '' : ratio(f.brokerCpuUsPerMsg, tcp?.brokerCpuUsPerMsg),
          transport === 'tcp' ? '' : ratio(f.deliveredPerSec, tcp?.deliveredPerSec),
          fmt(f.latencyP50Ms, 2), fmt(f.latencyP99Ms, 2)]);
      }
    }
  }
  if (rows.length === 0) return '';
  return mdTable(['scenario', 'broker', 'transport', 'delivered/s', 'lost', 'CPU µs/msg', 'µs/msg over TCP', 'CPU vs TCP', 'rate vs TCP',
    'p50 ms', 'p99 ms'], rows, 3);
}

const STORM_ROWS: { label: string; value: (r: RunRecord) => number | undefined; digits: number; ratio?: boolean }[] = [
  { label: 'connected', value: (r) => r.storm?.connected, digits: 0 },
  { label: 'connects/s', value: (r) => r.storm?.connectsPerSec, digits: 0, ratio: true },
  { label: 'broker RSS idle (MiB)', value: (r) => r.storm?.rssBeforeMiB, digits: 1 },
  { label: 'broker RSS connected (MiB)', value: (r) => r.storm?.rssAfterMiB, digits: 1 },
  { label: 'RSS per connection (KiB)', value: (r) => r.storm?.rssPerConnKiB, digits: 1, ratio: true },
  { label: 'broker CPU (s)', value: (r) => r.storm?.brokerCpuSec, digits: 2 },
  { label: 'generator CPU (s, 4 procs)', value: (r) => r.storm?.generatorCpuSec, digits: 2 },
];

/** The storm table, brokers as columns. */
export function stormTable(records: RunRecord[], brokers: readonly BrokerName[]): string {
  const storms = records.filter((r) => r.scenario === 'storm');
  if (storms.length === 0) return '';
  const by = (b: BrokerName): RunRecord | undefined => storms.find((r) => r.broker === b);
  const showRatios = brokers.includes('petrel') && brokers.length > 1;
  const others = brokers.filter((b) => b !== 'petrel');
  const head = ['', ...brokers, ...(showRatios ? others.map((o) => `petrel/${o}`) : [])];
  const lines = [`| ${head.join(' | ')} |`, `|${head.map((_, i) => (i === 0 ? '---' : '---:')).join('|')}|`];
  for (const row of STORM_ROWS) {
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
  const errors = storms.filter((r) => r.error !== undefined).map((r) => `${r.broker}: ${r.error}`);
  return lines.join('\n') + (errors.length > 0 ? `\n\nFailures: ${errors.join('; ')}` : '');
}

/** Notes on runs with problems other than loss: refused acknowledgements, topic errors, failed connections. */
export function notes(records: RunRecord[]): string {
  const out: string[] = [];
  for (const r of records) {
    const f = r.flow;
    if (f === undefined) continue;
    const t = `${r.broker}, ${title(r.scenario, r.qos, r.protocol)}`;
    if (f.refused > 0) out.push(`- ${t}: ${f.refused} PUBLISHes refused with a failure reason code`);
    if (f.topicErrors > 0) out.push(`- ${t}: ${f.topicErrors} deliveries on a wrong or unresolvable topic (alias)`);
    if (f.clientErrors > 0) out.push(`- ${t}: ${f.clientErrors} client connections failed or were closed by the broker`);
    if (f.unfinished > 0) out.push(`- ${t}: ${f.unfinished} QoS ${r.qos ?? ''} exchanges never completed (no ${r.qos === 2 ? 'PUBREC or PUBCOMP' : 'PUBACK'} from the broker)`);
    if (f.drainEnd === 'timeout') out.push(`- ${t}: deliveries were still arriving when the ${f.drainSeconds.toFixed(0)} s wait after publishing ended; 'lost' may include late ones`);
    if (f.stalls > 0) out.push(`- ${t}: publishing paused ${f.stalls} times for 2 s without deliveries (owed deliveries written off)`);
    if (f.generatorCpuShare > 0.95) out.push(`- ${t}: generator CPU ${f.generatorCpuShare.toFixed(2)}: the generator, not the broker, may have been the limit`);
  }
  return out.join('\n');
}

/** Everything: the flow table, the ratios, the storm table and the notes. */
export function report(records: RunRecord[], brokers: readonly BrokerName[]): string {
  const parts: string[] = [];
  const ft = flowTable(records);
  if (ft !== '') parts.push(ft);
  const rt = ratioTables(records, brokers);
  if (rt !== '') parts.push(rt);
  const tt = transportTable(records, brokers);
  if (tt !== '') parts.push(`QoS 0 by transport (MQTT 3.1.1), broker CPU per delivered message against the same broker over TCP:\n\n${tt}`);
  const st = stormTable(records, brokers);
  if (st !== '') parts.push(`Connection storm: ${Number(process.env.BENCH_STORM_CLIENTS ?? 19_000).toLocaleString('en-US')} clients\n\n${st}`);
  const n = notes(records);
  if (n !== '') parts.push(`Notes:\n\n${n}`);
  return parts.join('\n\n') + '\n';
}
