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
  if (resolveLogFormat(format) === 'json') return pino(loggerOptions(level));
  // In-process and synchronous: no transport thread for a terminal's few lines a second.
  const stream = pretty({ colorize: process.stdout.isTTY === true, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname', singleLine: true, sync: true });
  return pino(loggerOptions(level), stream);
}

export type { Logger };
