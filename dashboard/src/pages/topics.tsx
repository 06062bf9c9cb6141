/**
 * The topic tree with live messages: the page connects to the broker's WebSocket listener (its
 * port and path from GET /api/v1/listeners) with Petrel's own client, subscribes to a filter
 * (default #) and files every message under its topic levels. Credentials are only needed when
 * the broker's MQTT auth asks for them.
 */
import { connect, type MqttClient, type ReceivedMessage } from 'petrel/client';
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, type ListenerView } from '../api.js';
import { ErrorLine } from '../ui.js';

interface TopicNode {
  name: string;
  topic: string;
  children: Map<string, TopicNode>;
  messages: number;
  last?: { payload: string; qos: number; retain: boolean; at: number; bytes: number };
}

/** Nodes kept at most (a broker with more topics than this shows the first ones). */
const MAX_NODES = 20_000;
/** Redraws at most this often while messages flow. */
const REDRAW_MS = 200;

const utf8 = new TextDecoder('utf-8', { fatal: true });

function text(bytes: Uint8Array): string {
  try {
    return utf8.decode(bytes.subarray(0, 2048));
  } catch {
    return `0x${Array.from(bytes.subarray(0, 256), (b) => b.toString(16).padStart(2, '0')).join('')}`;
  }
}

const newNode = (name: string, topic: string): TopicNode => ({ name, topic, children: new Map(), messages: 0 });

/** The WebSocket URL of the broker as this page can reach it: the page's host name, the listener's port and path. */
export function wsUrlOf(listeners: readonly ListenerView[]): string | undefined {
  const secure = location.protocol === 'https:';
  const l = listeners.find((x) => x.type === (secure ? 'wss' : 'ws')) ?? listeners.find((x) => x.type === 'ws' || x.type === 'wss');
  if (l === undefined) return undefined;
  return `${l.type}://${location.hostname}:${l.port}${l.path ?? '/mqtt'}`;
}

function Tree({ node, selected, onSelect }: { node: TopicNode; selected: string | undefined; onSelect: (n: TopicNode) => void }): preact.JSX.Element {
  const [open, setOpen] = useState(true);
  const kids = [...node.children.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return (
    <li data-topic={node.topic}>
      <span class={`node${selected === node.topic ? ' selected' : ''}`}>
        {kids.length > 0 ? <button type="button" class="toggle" onClick={() => setOpen(!open)}>{open ? '▾' : '▸'}</button> : <span class="toggle" />}
        <a href="javascript:void 0" onClick={() => onSelect(node)}>{node.name === '' ? '(empty)' : node.name}</a>
        {node.last !== undefined && <span class="last" data-testid="last-payload">{node.last.payload.slice(0, 80)}</span>}
        {node.messages > 0 && <span class="count">{node.messages}</span>}
      </span>
      {open && kids.length > 0 && <ul>{kids.map((k) => <Tree key={k.name} node={k} selected={selected} onSelect={onSelect} />)}</ul>}
    </li>
  );
}

export function TopicsPage(): preact.JSX.Element {
  const [url, setUrl] = useState('');
  const [filter, setFilter] = useState('#');
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [status, setStatus] = useState('disconnected');
  const [error, setError] = useState<string | undefined>(undefined);
  const [, setVersion] = useState(0);
  const [selected, setSelected] = useState<TopicNode | undefined>(undefined);
  const root = useRef<TopicNode>(newNode('', ''));
  const nodes = useRef(0);
  const client = useRef<MqttClient | undefined>(undefined);
  const redraw = useRef<number | undefined>(undefined);

  const file = (m: ReceivedMessage): void => {
    let node = root.current;
    let topic = '';
    for (const level of m.topic.split('/')) {
      topic = topic === '' && node === root.current ? level : `${topic}/${level}`;
      let next = node.children.get(level);
      if (next === undefined) {
        if (nodes.current >= MAX_NODES) return;
        nodes.current++;
        next = newNode(level, topic);
        node.children.set(level, next);
      }
      node = next;
    }
    node.messages++;
    node.last = { payload: text(m.payload), qos: m.qos, retain: m.retain, at: Date.now(), bytes: m.payload.length };
    if (redraw.current === undefined) {
      redraw.current = window.setTimeout(() => {
        redraw.current = undefined;
        setVersion((v) => v + 1);
      }, REDRAW_MS);
    }
  };

  const disconnect = async (): Promise<void> => {
    const c = client.current;
    client.current = undefined;
    if (c !== undefined) await c.end().catch(() => undefined);
    setStatus('disconnected');
  };

  const start = async (target: string): Promise<void> => {
    await disconnect();
    setStatus(`connecting to ${target}`);
    try {
      const c = await connect(target, {
        clientId: `petrel-dashboard-${Math.random().toString(36).slice(2, 10)}`, protocolVersion: 5, clean: true,
        reconnect: { initialDelay: 500, maxDelay: 10_000 },
        ...(username !== '' ? { username } : {}), ...(password !== '' ? { password } : {}),
      });
      client.current = c;
      c.on('message', file);
      c.on('offline', () => setStatus('reconnecting'));
      c.on('online', () => setStatus(`connected to ${target}`));
      await c.subscribe(filter, { qos: 0 });
      setStatus(`connected to ${target}, subscribed to ${filter}`);
      setError(undefined);
    } catch (err) {
      setStatus('disconnected');
      setError(err instanceof Error ? err.message : String(err));
    }
  };

  useEffect(() => {
    let live = true;
    api<ListenerView[]>('/api/v1/listeners').then((ls) => {
      const found = wsUrlOf(ls);
      if (!live) return;
      if (found === undefined) {
        setError('the broker has no WebSocket listener: the topic tree needs one (listeners: type ws)');
        return;
      }
      setUrl(found);
      void start(found);
    }, (err: unknown) => setError(err instanceof Error ? err.message : String(err)));
    return () => {
      live = false;
      if (redraw.current !== undefined) window.clearTimeout(redraw.current);
      void disconnect();
    };
    // Connects once, on opening the page; the form reconnects with other settings.
  }, []);

  const clear = (): void => {
    root.current = newNode('', '');
    nodes.current = 0;
    setSelected(undefined);
    setVersion((v) => v + 1);
  };

  const top = [...root.current.children.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  const last = selected?.last;
  return (
    <div>
      <form class="toolbar" onSubmit={(e) => { e.preventDefault(); void start(url); }}>
        <input name="url" size={34} value={url} onInput={(e) => setUrl(e.currentTarget.value)} />
        <input name="filter" size={12} value={filter} onInput={(e) => setFilter(e.currentTarget.value)} />
        <input name="username" size={10} placeholder="MQTT username" value={username} onInput={(e) => setUsername(e.currentTarget.value)} />
        <input name="password" size={10} type="password" placeholder="password" value={password} onInput={(e) => setPassword(e.currentTarget.value)} />
        <button type="submit">Connect</button>
        <button type="button" onClick={() => void disconnect()}>Disconnect</button>
        <button type="button" onClick={clear}>Clear</button>
      </form>
      <p class="status" data-testid="mqtt-status">{status}</p>
      <ErrorLine error={error} />
      <div class="split">
        <ul class="tree" data-testid="topic-tree">
          {top.map((n) => <Tree key={n.name} node={n} selected={selected?.topic} onSelect={setSelected} />)}
        </ul>
        {selected !== undefined && (
          <section class="panel" data-testid="topic-detail">
            <h2>{selected.topic}</h2>
            <p>{selected.messages} message{selected.messages === 1 ? '' : 's'} since the page connected</p>
            {last !== undefined && (
              <>
                <p>QoS {last.qos}{last.retain ? ', retained' : ''}, {last.bytes} bytes, {new Date(last.at).toLocaleTimeString()}</p>
                <pre>{last.payload}</pre>
              </>
            )}
          </section>
        )}
      </div>
    </div>
  );
}
