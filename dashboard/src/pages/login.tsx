/** Login with an API key (checked against GET /api/v1/stats) or a username and password (POST /api/v1/login). */
import { useState } from 'preact/hooks';
import { api, setToken } from '../api.js';
import { ErrorLine } from '../ui.js';

export function LoginPage(): preact.JSX.Element {
  const [mode, setMode] = useState<'key' | 'user'>('key');
  const [key, setKey] = useState('');
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [error, setError] = useState<string | undefined>(undefined);
  const [busy, setBusy] = useState(false);

  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    setBusy(true);
    try {
      if (mode === 'key') {
        await api('/api/v1/stats', { token: key.trim() });
        setToken(key.trim());
      } else {
        const r = await api<{ token: string }>('/api/v1/login', { method: 'POST', body: { username, password }, token: '' });
        setToken(r.token);
      }
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
      setBusy(false);
    }
  };

  return (
    <form class="login" onSubmit={(e) => void submit(e)}>
      <h1>Petrel</h1>
      <div class="tabs">
        <button type="button" class={mode === 'key' ? 'active' : ''} onClick={() => setMode('key')}>API key</button>
        <button type="button" class={mode === 'user' ? 'active' : ''} onClick={() => setMode('user')}>Username</button>
      </div>
      {mode === 'key' ? (
        <label>API key<input name="apiKey" type="password" autocomplete="off" value={key} onInput={(e) => setKey(e.currentTarget.value)} /></label>
      ) : (
        <>
          <label>Username<input name="username" value={username} onInput={(e) => setUsername(e.currentTarget.value)} /></label>
          <label>Password<input name="password" type="password" value={password} onInput={(e) => setPassword(e.currentTarget.value)} /></label>
        </>
      )}
      <button type="submit" disabled={busy}>Log in</button>
      <ErrorLine error={error} />
    </form>
  );
}
