import { pino, type Logger, type LoggerOptions } from 'pino';

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

export function loggerOptions(level: string): LoggerOptions {
  return { level, redact: { paths: REDACT_PATHS, censor: '[redacted]' } };
}

export function createLogger(level: string): Logger {
  return pino(loggerOptions(level));
}

export type { Logger };
