/** Retained messages matching a filter (GET /api/v1/retained), a page at a time; one can be cleared. */
import { useState } from 'preact/hooks';
import { api, type Page, type Retained } from '../api.js';
import { attempt, ErrorLine, Table, useLoad } from '../ui.js';

const LIMIT = 50;

export function RetainedPage(): preact.JSX.Element {
  const [input, setInput] = useState('#');
  const [filter, setFilter] = useState('#');
  const [pageNo, setPageNo] = useState(1);
  const [actionError, setActionError] = useState<string | undefined>(undefined);
  const page = useLoad(() => api<Page<Retained>>('/api/v1/retained', { query: { filter, encoding: 'plain', _page: pageNo, _limit: LIMIT } }), [filter, pageNo]);
  const pages = page.data === undefined ? 1 : Math.max(1, Math.ceil(page.data.totalRow / LIMIT));
  const remove = async (topic: string): Promise<void> => {
    if (await attempt(() => api('/api/v1/retained/delete', { method: 'POST', query: { topic } }), setActionError)) page.reload();
  };
  return (
    <div>
      <form class="toolbar" onSubmit={(e) => { e.preventDefault(); setPageNo(1); setFilter(input.trim() || '#'); page.reload(); }}>
        <input name="filter" placeholder="Topic filter" value={input} onInput={(e) => setInput(e.currentTarget.value)} />
        <button type="submit">List</button>
        <span>{page.data === undefined ? '' : `${page.data.totalRow} retained, page ${pageNo} of ${pages}`}</span>
        <button type="button" disabled={pageNo <= 1} onClick={() => setPageNo(pageNo - 1)}>Previous</button>
        <button type="button" disabled={pageNo >= pages} onClick={() => setPageNo(pageNo + 1)}>Next</button>
      </form>
      <ErrorLine error={page.error ?? actionError} />
      <Table testid="retained" head={['Topic', 'Payload', 'QoS', 'Bytes', 'Content type', '']}>
        {(page.data?.list ?? []).map((m) => (
          <tr key={m.topic} data-topic={m.topic}>
            <td>{m.topic}</td>
            <td class="payload">{m.encoding === 'plain' ? m.payload : `(${m.encoding}) ${m.payload}`}</td>
            <td>{m.qos}</td><td>{m.payloadBytes}</td><td>{m.contentType ?? ''}</td>
            <td class="actions"><button type="button" class="danger" onClick={() => void remove(m.topic)}>Delete</button></td>
          </tr>
        ))}
      </Table>
    </div>
  );
}
