/** The bench summary as text for people (`--json` prints the Summary object itself). */
import type { Percentiles, Summary } from './run.js';

function row(name: string, p: Percentiles): string {
  if (p.count === 0) return `${name.padEnd(12)}none`;
  return `${name.padEnd(12)}p50 ${p.p50}  p90 ${p.p90}  p99 ${p.p99}  p99.9 ${p.p999}  max ${p.max}  (n=${p.count})`;
}

export function formatSummary(s: Summary): string {
  const lines = [
    `${s.scenario} ${s.url}  MQTT ${s.protocolVersion === 5 ? '5.0' : s.protocolVersion === 4 ? '3.1.1' : '3.1'}  QoS ${s.qos}  ${s.payloadBytes} B payload`,
    `clients     ${s.clients.connected}/${s.clients.requested} connected, ${s.clients.failed} failed; ${s.publishers} publishers, ${s.subscribers} subscribers`,
  ];
  if (s.scenario !== 'conn') {
    lines.push(
      `messages    sent ${s.sent}  acked ${s.acked}  received ${s.received}  in ${s.seconds} s`,
      `throughput  sent ${s.throughput.sentPerSec} msg/s  received ${s.throughput.receivedPerSec} msg/s`,
    );
    if (s.expected !== null) lines.push(`loss        expected ${s.expected}  lost ${s.lost}  duplicates ${s.duplicates}  unfinished ${s.unfinished}  (wait: ${s.drain})`);
    lines.push(row('latency ms', s.latencyMs));
  }
  lines.push(row('connect ms', s.connectMs));
  const errors = Object.entries(s.errors);
  lines.push(`errors      ${errors.length === 0 ? 'none' : errors.map(([k, n]) => `${k} ${n}`).join(', ')}`);
  lines.push(`cpu         user ${s.cpu.userMs} ms  system ${s.cpu.systemMs} ms  ${s.cpu.usPerMessage} us per message`);
  return `${lines.join('\n')}\n`;
}
