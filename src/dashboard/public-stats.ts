import './style.css';
import type { PublicStats } from './api.js';
import { byId } from './dom.js';
import { int, pct } from './format.js';

const POLL_MS = 10_000;

function show(id: string, text: string, raw: number): void {
  const el = byId(id);
  el.textContent = text;
  el.dataset.value = String(raw);
}

async function refresh(): Promise<void> {
  const status = byId('status');
  try {
    const res = await fetch('/stats.json', { cache: 'no-store', credentials: 'omit' });
    if (!res.ok) throw new Error(`${res.status} ${res.statusText}`);
    const s = (await res.json()) as PublicStats;
    show('embeddings-cached', int(s.embeddings_cached), s.embeddings_cached);
    show('tenants-served', int(s.tenants_served), s.tenants_served);
    show('hit-ratio', pct(s.hit_ratio), s.hit_ratio);
    show('inputs-served', int(s.inputs_served), s.inputs_served);
    status.textContent = `Updated ${s.updated_at.slice(11, 19)} UTC`;
  } catch (err) {
    status.textContent = `Could not load the figures: ${(err as Error).message}`;
  }
  setTimeout(() => void refresh(), POLL_MS);
}

void refresh();
