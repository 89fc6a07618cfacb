/**
 * Progress of long CLI work (seed, import, export, models pull), one way for all four: a bar on
 * a terminal (cli-progress: total where known, %, rate, ETA), a plain line every couple of
 * seconds when stderr is piped (a log file or CI shows the work is alive), and always one
 * final summary line.
 */
import { createReadStream } from 'node:fs';
import { Presets, SingleBar } from 'cli-progress';

export interface ProgressOptions {
  /** What is being done, e.g. `seed`. */
  label: string;
  /** What is counted, e.g. `inputs`, `rows`, `B`. */
  unit: string;
  /** Units in all, when known. */
  total?: number | null;
  /** Where progress goes; stderr by default (stdout may be the data, as for export). */
  stream?: NodeJS.WritableStream & { isTTY?: boolean };
  /** Bar or plain lines; default: a bar where the stream is a terminal. */
  tty?: boolean;
  /** Plain mode: ms between lines. Default 2000. */
  intervalMs?: number;
  /** Extra text after the counts, e.g. `12 hits` (plain lines and the bar alike). */
  detail?: () => string;
  now?: () => number;
}

export interface Progress {
  /** Sets the units done so far. */
  update(done: number): void;
  setTotal(total: number): void;
  /** Stops the bar or the timer and writes `summary` as the last line (to `out`, default the progress stream). */
  finish(summary: string, out?: NodeJS.WritableStream): void;
  /** Stops without a summary (on failure). */
  stop(): void;
}

export function startProgress(opts: ProgressOptions): Progress {
  const stream = opts.stream ?? process.stderr;
  const tty = opts.tty ?? stream.isTTY === true;
  const now = opts.now ?? (() => performance.now());
  const started = now();
  let done = 0;
  let total = opts.total ?? null;
  const rate = () => {
    const secs = (now() - started) / 1000;
    return secs > 0 ? done / secs : 0;
  };
  const detail = () => (opts.detail ? ` | ${opts.detail()}` : '');

  let bar: SingleBar | null = null;
  let timer: NodeJS.Timeout | null = null;
  if (tty) {
    const counts = total === null ? '{value} {unit}' : '[{bar}] {percentage}% | {value}/{total} {unit}';
    bar = new SingleBar(
      {
        format: `${opts.label} ${counts} | {rate}/s | ETA {eta_formatted}{detail}`,
        stream: stream as NodeJS.WriteStream,
        hideCursor: true,
        etaBuffer: 50,
      },
      Presets.shades_classic,
    );
    bar.start(total ?? 0, 0, { unit: opts.unit, rate: 0, detail: detail() });
  } else {
    timer = setInterval(() => stream.write(plainLine(opts.label, opts.unit, done, total, rate()) + detail() + '\n'), opts.intervalMs ?? 2000);
    timer.unref();
  }
  const end = () => {
    bar?.stop();
    bar = null;
    if (timer) clearInterval(timer);
    timer = null;
  };
  return {
    update(n) {
      done = n;
      bar?.update(n, { rate: formatRate(rate()), detail: detail() });
    },
    setTotal(t) {
      total = t;
      bar?.setTotal(t);
    },
    finish(summary, out = stream) {
      end();
      out.write(summary + '\n');
    },
    stop: end,
  };
}

/** `seed: 1200/5000 inputs (24%), 300 inputs/s, ETA 13 s` (total unknown: `seed: 1200 inputs, 300 inputs/s`). */
export function plainLine(label: string, unit: string, done: number, total: number | null, perSecond: number): string {
  const r = `${formatRate(perSecond)} ${unit}/s`;
  if (total === null || total <= 0) return `${label}: ${done} ${unit}, ${r}`;
  const pct = Math.min(100, Math.floor((100 * done) / total));
  const eta = perSecond > 0 ? `, ETA ${formatSeconds((total - done) / perSecond)}` : '';
  return `${label}: ${done}/${total} ${unit} (${pct}%), ${r}${eta}`;
}

const formatRate = (perSecond: number) => (perSecond >= 100 ? String(Math.round(perSecond)) : perSecond.toFixed(1));

export function formatSeconds(s: number): string {
  if (!Number.isFinite(s) || s < 0) return '?';
  if (s < 60) return `${Math.ceil(s)} s`;
  const m = Math.floor(s / 60);
  return m < 60 ? `${m} min ${Math.round(s % 60)} s` : `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** Non-empty lines of a file (the total of seed and import), read once in chunks. */
export async function countLines(file: string): Promise<number> {
  let lines = 0;
  let inLine = false;
  for await (const chunk of createReadStream(file) as AsyncIterable<Buffer>) {
    for (const byte of chunk) {
      if (byte === 10) {
        if (inLine) lines++;
        inLine = false;
      } else if (byte !== 13 && byte !== 32 && byte !== 9) inLine = true;
    }
  }
  return inLine ? lines + 1 : lines;
}
