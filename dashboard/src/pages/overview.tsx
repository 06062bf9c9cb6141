/**
 * Live rates and counts from GET /api/v1/stats/sse (an EventSource; the token goes as
 * ?access_token=, EventSource sends no headers). Rates are the counters' differences between two
 * events over the time between them.
 */
import { useEffect, useState } from 'preact/hooks';
import { getToken, type Stats, urlOf } from '../api.js';
import { Chart } from '../chart.js';
import { bytes, Card, ErrorLine } from '../ui.js';

/** Points kept per chart. */
const KEEP = 120;

interface Series {
  t: number[];
  in: number[];
  out: number[];
  connections: number[];
}

const empty = (): Series => ({ t: [], in: [], out: [], connections: [] });

function push(arr: number[], v: number): number[] {
  const next = arr.length >= KEEP ? arr.slice(arr.length - KEEP + 1) : arr.slice();
  next.push(v);
  return next;
}

export function OverviewPage(): preact.JSX.Element {
  const [stats, setStats] = useState<Stats | undefined>(undefined);
  const [series, setSeries] = useState<Series>(empty);
  const [error, setError] = useState<string | undefined>(undefined);

  useEffect(() => {
    const source = new EventSource(urlOf('/api/v1/stats/sse', { access_token: getToken() ?? '' }));
    let prev: Stats | undefined;
    source.addEventListener('stats', (e) => {
      const s = JSON.parse((e as MessageEvent<string>).data) as Stats;
      setStats(s);
      setError(undefined);
      const p = prev;
      prev = s;
      if (p === undefined || s.time <= p.time) return;
      const dt = (s.time - p.time) / 1000;
      setSeries((old) => ({
        t: push(old.t, s.time / 1000),
        in: push(old.in, Math.max(0, s.messagesReceived - p.messagesReceived) / dt),
        out: push(old.out, Math.max(0, s.messagesRouted - p.messagesRouted) / dt),
        connections: push(old.connections, s.connections),
      }));
    });
    source.onerror = () => setError('the statistics stream is interrupted; reconnecting');
    return () => source.close();
  }, []);

  return (
    <div>
      <ErrorLine error={error} />
      <div class="cards">
        <Card label="Connections" value={stats?.connections ?? '…'} testid="stat-connections" />
        <Card label="Sessions" value={stats?.sessions ?? '…'} testid="stat-sessions" />
        <Card label="Subscriptions" value={stats?.subscriptions ?? '…'} testid="stat-subscriptions" />
        <Card label="Retained" value={stats === undefined ? '…' : `${stats.retained} (${bytes(stats.retainedBytes)})`} testid="stat-retained" />
        <Card label="Messages in" value={stats?.messagesReceived ?? '…'} testid="stat-received" />
        <Card label="Messages out" value={stats?.messagesRouted ?? '…'} testid="stat-routed" />
        <Card label="Dropped" value={stats?.messagesDropped ?? '…'} testid="stat-dropped" />
        <Card label="Uptime" value={stats === undefined ? '…' : `${stats.uptime} s`} />
        <Card label="Memory (RSS)" value={stats === undefined ? '…' : bytes(stats.memory.rss)} />
      </div>
      <div class="charts">
        <Chart title="Messages per second" testid="chart-rates" data={[series.t, series.in, series.out]}
          series={[{ label: 'in', stroke: '#2563eb' }, { label: 'out', stroke: '#16a34a' }]} />
        <Chart title="Connections" testid="chart-connections" data={[series.t, series.connections]}
          series={[{ label: 'connections', stroke: '#9333ea' }]} />
      </div>
    </div>
  );
}
