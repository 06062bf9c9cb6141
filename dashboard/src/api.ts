/** The HTTP API as the dashboard calls it: the token in sessionStorage, `{ code, data }` answers, typed views. */

const TOKEN_KEY = 'petrel.token';

export function getToken(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(token: string | null): void {
  if (token === null) sessionStorage.removeItem(TOKEN_KEY);
  else sessionStorage.setItem(TOKEN_KEY, token);
  window.dispatchEvent(new Event('petrel-token'));
}

export class ApiError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
    this.name = 'ApiError';
  }
}

type Query = Record<string, string | number | undefined>;

export function urlOf(path: string, query: Query = {}): string {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== '') params.set(k, String(v));
  const qs = params.toString();
  return qs === '' ? path : `${path}?${qs}`;
}

/** Calls a route; resolves with `data` (undefined for answers without one). A 401 ends the login. */
export async function api<T>(path: string, opts: { method?: 'GET' | 'POST'; query?: Query; body?: unknown; token?: string } = {}): Promise<T> {
  const token = opts.token ?? getToken();
  const headers: Record<string, string> = {};
  if (token !== null) headers.authorization = `Bearer ${token}`;
  if (opts.body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(urlOf(path, opts.query), {
    method: opts.method ?? 'GET', headers, ...(opts.body !== undefined ? { body: JSON.stringify(opts.body) } : {}),
  });
  const text = await res.text();
  const json = (text === '' ? {} : JSON.parse(text)) as { data?: T; message?: string };
  if (!res.ok) {
    if (res.status === 401 && opts.token === undefined) setToken(null);
    throw new ApiError(res.status, json.message ?? `${res.status} ${res.statusText}`);
  }
  return json.data as T;
}

export interface Page<T> {
  pageNumber: number;
  pageSize: number;
  totalRow: number;
  next: string | null;
  list: T[];
}

export interface Stats {
  time: number;
  uptime: number;
  connections: number;
  connecting: number;
  sessions: number;
  subscriptions: number;
  retained: number;
  retainedBytes: number;
  messagesReceived: number;
  messagesRouted: number;
  messagesDropped: number;
  connectionsAccepted: number;
  memory: { rss: number; heapUsed: number };
}

export interface Client {
  clientId: string;
  username: string | null;
  protoName: string;
  protoVer: number;
  ipAddress: string | null;
  port: number | null;
  listener: string | null;
  transport: string | null;
  keepalive: number;
  cleanStart: boolean;
  connectedAt: number;
  subscriptions: number;
  queued: number;
  inflight: number;
  expiryInterval: number;
}

export interface Subscription {
  clientId: string;
  topicFilter: string;
  mqttQoS: number;
  noLocal: boolean;
  retainAsPublished: boolean;
  retainHandling: number;
  subscriptionIdentifier: number | null;
}

export interface Session {
  clientId: string;
  connected: boolean;
  expiryInterval: number;
  expiresInSeconds: number | null;
  subscriptions: number;
  queued: number;
  inflight: number;
}

export interface Retained {
  topic: string;
  payload: string;
  encoding: 'plain' | 'hex' | 'base64';
  qos: number;
  payloadBytes: number;
  contentType?: string;
  messageExpiryInterval?: number;
}

export interface ListenerView {
  name: string;
  type: 'tcp' | 'tls' | 'ws' | 'wss';
  host: string;
  port: number;
  path?: string;
  connections: number;
}
