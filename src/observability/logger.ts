/** Structured logging: a small Logger interface (pino's shape) and a pino-backed factory. */
import { pino } from 'pino';

export type LogLevel = 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';

export interface LogFn {
  (obj: object, msg?: string): void;
  (msg: string): void;
}

export interface Logger {
  error: LogFn;
  warn: LogFn;
  info: LogFn;
  debug: LogFn;
  trace: LogFn;
  child(bindings: Record<string, unknown>): Logger;
  isLevelEnabled?(level: string): boolean;
}

const noop: LogFn = () => undefined;

/** A logger that drops everything: the library default. */
export const silentLogger: Logger = {
  error: noop, warn: noop, info: noop, debug: noop, trace: noop,
  child: () => silentLogger,
  isLevelEnabled: () => false,
};

/**
 * A pino logger writing JSON lines to stdout. The default level, info, shows start-up,
 * connects, disconnects and refused connections, one line each, and nothing per message.
 */
export function createLogger(level: LogLevel = 'info'): Logger {
  return pino({ level, base: { name: 'petrel' } });
}
