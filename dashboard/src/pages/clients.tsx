/** Connected clients: a page of GET /api/v1/clients searched by id, one client inspected (info and subscriptions), kicked. */
import { useState } from 'preact/hooks';
import { api, type Client, type Page, type Subscription } from '../api.js';
import { attempt, ErrorLine, since, Table, useLoad } from '../ui.js';

const LIMIT = 1000;

function Inspect({ clientId, onClose }: { clientId: string; onClose: () => void }): preact.JSX.Element {
  const info = useLoad(() => api<Client>('/api/v1/clients/info', { query: { clientId } }), [clientId]);
  const subs = useLoad(() => api<Subscription[]>('/api/v1/client/subscriptions', { query: { clientId } }), [clientId]);
  return (
    <section class="panel" data-testid="client-inspect">
      <h2>{clientId} <button type="button" onClick={onClose}>Close</button></h2>
      <ErrorLine error={info.error ?? subs.error} />
      {info.data !== undefined && <pre>{JSON.stringify(info.data, null, 2)}</pre>}
      <h3>Subscriptions</h3>
      <Table head={['Filter', 'QoS', 'No Local', 'Retain As Published', 'Retain Handling', 'Identifier']}>
        {(subs.data ?? []).map((s) => (
          <tr key={s.topicFilter}>
            <td>{s.topicFilter}</td><td>{s.mqttQoS}</td><td>{String(s.noLocal)}</td><td>{String(s.retainAsPublished)}</td>
            <td>{s.retainHandling}</td><td>{s.subscriptionIdentifier ?? ''}</td>
          </tr>
        ))}
      </Table>
    </section>
  );
}

export function ClientsPage(): preact.JSX.Element {
  const [search, setSearch] = useState('');
  const [after, setAfter] = useState<string | undefined>(undefined);
  const [inspect, setInspect] = useState<string | undefined>(undefined);
  const [actionError, setActionError] = useState<string | undefined>(undefined);
  const page = useLoad(() => api<Page<Client>>('/api/v1/clients', { query: { _limit: LIMIT, after } }), [after], 2000);
  const needle = search.trim().toLowerCase();
  const shown = (page.data?.list ?? []).filter((c) => needle === '' || c.clientId.toLowerCase().includes(needle)
    || (c.username ?? '').toLowerCase().includes(needle) || (c.ipAddress ?? '').includes(needle));

  const kick = async (clientId: string): Promise<void> => {
    if (await attempt(() => api('/api/v1/clients/delete', { method: 'POST', query: { clientId } }), setActionError)) {
      if (inspect === clientId) setInspect(undefined);
      page.reload();
    }
  };

  return (
    <div>
      <div class="toolbar">
        <input type="search" name="search" placeholder="Search client id, username, address" value={search}
          onInput={(e) => setSearch(e.currentTarget.value)} />
        <button type="button" onClick={page.reload}>Refresh</button>
        <span>{page.data === undefined ? '' : `${page.data.totalRow} connected`}</span>
        {after !== undefined && <button type="button" onClick={() => setAfter(undefined)}>First page</button>}
        {page.data?.next != null && <button type="button" onClick={() => setAfter(page.data?.next ?? undefined)}>Next page</button>}
      </div>
      <ErrorLine error={page.error ?? actionError} />
      <Table testid="clients" head={['Client id', 'Username', 'Address', 'Protocol', 'Listener', 'Keep alive', 'Subs', 'Queued', 'Inflight', 'Connected', '']}>
        {shown.map((c) => (
          <tr key={c.clientId} data-client={c.clientId}>
            <td>{c.clientId}</td><td>{c.username ?? ''}</td><td>{c.ipAddress ?? ''}{c.port !== null ? `:${c.port}` : ''}</td>
            <td>{c.protoName} {c.protoVer}</td><td>{c.listener ?? ''}</td><td>{c.keepalive}</td><td>{c.subscriptions}</td>
            <td>{c.queued}</td><td>{c.inflight}</td><td>{since(c.connectedAt)}</td>
            <td class="actions">
              <button type="button" onClick={() => setInspect(c.clientId)}>Inspect</button>
              <button type="button" class="danger" onClick={() => void kick(c.clientId)}>Kick</button>
            </td>
          </tr>
        ))}
      </Table>
      {inspect !== undefined && <Inspect clientId={inspect} onClose={() => setInspect(undefined)} />}
    </div>
  );
}
