/** Every session's subscriptions (GET /api/v1/subscriptions), narrowed to one client or to filters containing a text. */
import { useState } from 'preact/hooks';
import { api, type Page, type Subscription } from '../api.js';
import { ErrorLine, Table, useLoad } from '../ui.js';

export function SubscriptionsPage(): preact.JSX.Element {
  const [clientId, setClientId] = useState('');
  const [match, setMatch] = useState('');
  const [after, setAfter] = useState<string | undefined>(undefined);
  const page = useLoad(() => api<Page<Subscription>>('/api/v1/subscriptions', {
    query: { _limit: 500, after, clientId: clientId.trim(), match: match.trim() },
  }), [after, clientId, match], 5000);
  return (
    <div>
      <div class="toolbar">
        <input name="clientId" placeholder="Client id" value={clientId} onInput={(e) => { setAfter(undefined); setClientId(e.currentTarget.value); }} />
        <input name="match" placeholder="Filter contains" value={match} onInput={(e) => { setAfter(undefined); setMatch(e.currentTarget.value); }} />
        <button type="button" onClick={page.reload}>Refresh</button>
        <span>{page.data === undefined ? '' : `${page.data.totalRow} subscriptions`}</span>
        {after !== undefined && <button type="button" onClick={() => setAfter(undefined)}>First page</button>}
        {page.data?.next != null && <button type="button" onClick={() => setAfter(page.data?.next ?? undefined)}>Next page</button>}
      </div>
      <ErrorLine error={page.error} />
      <Table testid="subscriptions" head={['Client id', 'Filter', 'QoS', 'No Local', 'Retain As Published', 'Retain Handling', 'Identifier']}>
        {(page.data?.list ?? []).map((s) => (
          <tr key={`${s.clientId} ${s.topicFilter}`}>
            <td>{s.clientId}</td><td>{s.topicFilter}</td><td>{s.mqttQoS}</td><td>{String(s.noLocal)}</td>
            <td>{String(s.retainAsPublished)}</td><td>{s.retainHandling}</td><td>{s.subscriptionIdentifier ?? ''}</td>
          </tr>
        ))}
      </Table>
    </div>
  );
}
