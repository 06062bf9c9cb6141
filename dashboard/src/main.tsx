/** The Petrel dashboard: a login, then pages chosen by the URL's hash (#/clients, #/retained, ...). */
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { api, getToken, setToken } from './api.js';
import { ClientsPage } from './pages/clients.js';
import { ListenersPage } from './pages/listeners.js';
import { LoginPage } from './pages/login.js';
import { OverviewPage } from './pages/overview.js';
import { PublishPage } from './pages/publish.js';
import { RetainedPage } from './pages/retained.js';
import { SessionsPage } from './pages/sessions.js';
import { SubscriptionsPage } from './pages/subscriptions.js';
import { TopicsPage } from './pages/topics.js';
import './style.css';

const PAGES: { path: string; title: string; view: () => preact.JSX.Element }[] = [
  { path: 'overview', title: 'Overview', view: () => <OverviewPage /> },
  { path: 'clients', title: 'Clients', view: () => <ClientsPage /> },
  { path: 'sessions', title: 'Sessions', view: () => <SessionsPage /> },
  { path: 'subscriptions', title: 'Subscriptions', view: () => <SubscriptionsPage /> },
  { path: 'retained', title: 'Retained', view: () => <RetainedPage /> },
  { path: 'topics', title: 'Topic tree', view: () => <TopicsPage /> },
  { path: 'publish', title: 'Publish', view: () => <PublishPage /> },
  { path: 'listeners', title: 'Listeners & config', view: () => <ListenersPage /> },
];

function useHashPath(): string {
  const read = (): string => location.hash.replace(/^#\/?/, '') || 'overview';
  const [path, setPath] = useState(read);
  useEffect(() => {
    const onChange = (): void => setPath(read());
    window.addEventListener('hashchange', onChange);
    return () => window.removeEventListener('hashchange', onChange);
  }, []);
  return path;
}

function useToken(): string | null {
  const [token, set] = useState(getToken);
  useEffect(() => {
    const onChange = (): void => set(getToken());
    window.addEventListener('petrel-token', onChange);
    return () => window.removeEventListener('petrel-token', onChange);
  }, []);
  return token;
}

function App(): preact.JSX.Element {
  const token = useToken();
  const path = useHashPath();
  if (token === null) return <LoginPage />;
  const page = PAGES.find((p) => p.path === path) ?? PAGES[0];
  const logout = (): void => {
    void api('/api/v1/logout', { method: 'POST' }).catch(() => undefined).finally(() => setToken(null));
  };
  return (
    <div class="layout">
      <nav>
        <div class="brand">Petrel</div>
        {PAGES.map((p) => <a key={p.path} href={`#/${p.path}`} class={p === page ? 'active' : ''}>{p.title}</a>)}
        <button type="button" class="logout" onClick={logout}>Log out</button>
      </nav>
      <main data-page={page?.path}>
        <h1>{page?.title}</h1>
        {page?.view()}
      </main>
    </div>
  );
}

const root = document.getElementById('app');
if (root !== null) render(<App />, root);
