/** Sessions, connected or not (GET /api/v1/sessions), paged by cursor; a session can be ended. */
import { useState } from 'preact/hooks';
import { api, type Page, type Session } from '../api.js';
import { attempt, ErrorLine, Table, useLoad } from '../ui.js';

export function SessionsPage(): preact.JSX.Element {
  const [after, setAfter] = useState<string | undefined>(undefined);
  const [actionError, setActionError] = useState<string | undefined>(undefined);
  const page = useLoad(() => api<Page<Session>>('/api/v1/sessions', { query: { _limit: 500, after } }), [after], 5000);
  const end = async (clientId: string): Promise<void> => {
    if (await attempt(() => api('/api/v1/sessions/delete', { method: 'POST', query: { clientId } }), setActionError)) page.reload();
  };
  return (
    <div>
      <div class="toolbar">
        <button type="button" onClick={page.reload}>Refresh</button>
        <span>{page.data === undefined ? '' : `${page.data.totalRow} sessions`}</span>
        {after !== undefined && <button type="button" onClick={() => setAfter(undefined)}>First page</button>}
        {page.data?.next != null && <button type="button" onClick={() => setAfter(page.data?.next ?? undefined)}>Next page</button>}
      </div>
      <ErrorLine error={page.error ?? actionError} />
      <Table testid="sessions" head={['Client id', 'Connected', 'Expiry interval (s)', 'Expires in (s)', 'Subs', 'Queued', 'Inflight', '']}>
        {(page.data?.list ?? []).map((s) => (
          <tr key={s.clientId} data-session={s.clientId}>
            <td>{s.clientId}</td><td>{s.connected ? 'yes' : 'no'}</td><td>{s.expiryInterval}</td><td>{s.expiresInSeconds ?? ''}</td>
            <td>{s.subscriptions}</td><td>{s.queued}</td><td>{s.inflight}</td>
            <td class="actions"><button type="button" class="danger" onClick={() => void end(s.clientId)}>End session</button></td>
          </tr>
        ))}
      </Table>
    </div>
  );
}
