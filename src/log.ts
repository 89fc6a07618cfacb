import { pino, type Logger, type LoggerOptions } from 'pino';
import pretty from 'pino-pretty';

/** Paths never written to logs: keys travel in these. */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers["x-admin-token"]',
  'headers.authorization',
  'apiKey',
  'api_key',
  'key',
  '*.apiKey',
  '*.api_key',
];

/** `pretty`: one coloured line per event for a person at a terminal; `json`: one JSON object per line for a collector. */
export type LogFormat = 'json' | 'pretty';

export function loggerOptions(level: string): LoggerOptions {
  return { level, redact: { paths: REDACT_PATHS, censor: '[redacted]' } };
}

/** `auto` (the default) is pretty on a terminal and JSON otherwise. */
export function resolveLogFormat(format: LogFormat | 'auto' | undefined, stream: { isTTY?: boolean } = process.stdout): LogFormat {
  if (format === 'json' || format === 'pretty') return format;
  return stream.isTTY ? 'pretty' : 'json';
}

export function createLogger(level: string, format?: LogFormat | 'auto'): Logger {
  // Asynchronous writes to stdout: a request's access line never waits for the pipe (a
  // synchronous write per request cost the miss path a syscall and a wake-up each); lines
  // written while a write is in flight go out together, and pino flushes what is left on exit.
  if (resolveLogFormat(format) === 'json') return pino(loggerOptions(level), pino.destination({ dest: 1, sync: false }));
  // In-process and synchronous: no transport thread for a terminal's few lines a second.
  const stream = pretty({ colorize: process.stdout.isTTY === true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname', singleLine: true, sync: true });
  return pino(loggerOptions(level), stream);
}

export type { Logger };
