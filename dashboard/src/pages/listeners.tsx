/** The MQTT listeners (GET /api/v1/listeners) and the configuration in use (GET /api/v1/config, secrets redacted), read-only. */
import { api, type ListenerView } from '../api.js';
import { ErrorLine, Table, useLoad } from '../ui.js';

export function ListenersPage(): preact.JSX.Element {
  const listeners = useLoad(() => api<ListenerView[]>('/api/v1/listeners'), [], 5000);
  const config = useLoad(() => api<unknown>('/api/v1/config'), []);
  return (
    <div>
      <ErrorLine error={listeners.error} />
      <Table testid="listeners" head={['Name', 'Type', 'Host', 'Port', 'Path', 'Connections']}>
        {(listeners.data ?? []).map((l) => (
          <tr key={l.name}><td>{l.name}</td><td>{l.type}</td><td>{l.host}</td><td>{l.port}</td><td>{l.path ?? ''}</td><td>{l.connections}</td></tr>
        ))}
      </Table>
      <h2>Configuration</h2>
      <ErrorLine error={config.error} />
      {config.data !== undefined && <pre data-testid="config">{JSON.stringify(config.data, null, 2)}</pre>}
    </div>
  );
}
