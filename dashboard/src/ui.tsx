/** Small pieces the pages share: loading a route's data, error lines, tables, formatting. */
import type { ComponentChildren } from 'preact';
import { useCallback, useEffect, useState } from 'preact/hooks';

export interface Loaded<T> {
  data: T | undefined;
  error: string | undefined;
  reload: () => void;
}

/** Runs `load` now, whenever `deps` change, on reload() and every `everyMs` (0: never). */
export function useLoad<T>(load: () => Promise<T>, deps: readonly unknown[], everyMs = 0): Loaded<T> {
  const [data, setData] = useState<T | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [tick, setTick] = useState(0);
  const reload = useCallback(() => setTick((n) => n + 1), []);
  useEffect(() => {
    let live = true;
    load().then((d) => {
      if (!live) return;
      setData(d);
      setError(undefined);
    }, (err: unknown) => {
      if (live) setError(err instanceof Error ? err.message : String(err));
    });
    return () => {
      live = false;
    };
  }, [...deps, tick]);
  useEffect(() => {
    if (everyMs <= 0) return undefined;
    const timer = window.setInterval(reload, everyMs);
    return () => window.clearInterval(timer);
  }, [everyMs, reload]);
  return { data, error, reload };
}

export function ErrorLine({ error }: { error: string | undefined }): preact.JSX.Element | null {
  return error === undefined ? null : <p class="error" role="alert">{error}</p>;
}

export function Table({ head, children, testid }: { head: string[]; children: ComponentChildren; testid?: string }): preact.JSX.Element {
  return (
    <table data-testid={testid}>
      <thead><tr>{head.map((h) => <th key={h}>{h}</th>)}</tr></thead>
      <tbody>{children}</tbody>
    </table>
  );
}

export function Card({ label, value, testid }: { label: string; value: string | number; testid?: string }): preact.JSX.Element {
  return (
    <div class="card">
      <div class="card-label">{label}</div>
      <div class="card-value" data-testid={testid}>{value}</div>
    </div>
  );
}

export function bytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(1)} MiB`;
}

export function since(ms: number): string {
  return new Date(ms).toLocaleString();
}

/** Runs an action, turning its failure into a message for the page. */
export async function attempt(action: () => Promise<unknown>, onError: (message: string | undefined) => void): Promise<boolean> {
  try {
    await action();
    onError(undefined);
    return true;
  } catch (err) {
    onError(err instanceof Error ? err.message : String(err));
    return false;
  }
}
