import './style.css';
import { call, callPublic, RequestError } from './api.js';
import { byId, fill } from './dom.js';
import { OperatorView } from './operator.js';
import { restore, signIn, signOut } from './session.js';
import { TenantView } from './tenant.js';

/** Seconds between refreshes of the figures (paused while the tab is hidden). */
const POLL_MS = 5000;

interface View {
  element: HTMLElement;
  refresh(): Promise<void>;
}

const form = byId<HTMLFormElement>('sign-in-form');
const tokenInput = byId<HTMLInputElement>('token');
const remember = byId<HTMLInputElement>('remember');
const signInError = byId('sign-in-error');
const signInSection = byId('sign-in');
const app = byId('app');
const who = byId('who');
const signOutButton = byId<HTMLButtonElement>('sign-out');
const status = byId('status');

const emailForm = byId<HTMLFormElement>('email-form');
const emailInput = byId<HTMLInputElement>('email');
const passwordInput = byId<HTMLInputElement>('password');
const emailError = byId('email-error');

let view: View | null = null;
/** The refresh token of an email login, kept in memory only, to end that login on sign-out. */
let refreshToken: string | null = null;
let timer: number | undefined;
let generation = 0;

/** Which view a secret opens: the admin API answers admin tokens; the tenant API the rest. */
async function viewFor(token: string): Promise<'operator' | 'tenant'> {
  // API keys (`ec_…`) never open the admin API: don't send them there.
  if (!token.startsWith('ec_')) {
    try {
      await call('GET', '/admin/v1/live', undefined, token);
      return 'operator';
    } catch (err) {
      if (!(err instanceof RequestError) || (err.status !== 401 && err.status !== 403)) throw err;
    }
  }
  await call('GET', '/v1/usage?group_by=day', undefined, token);
  return 'tenant';
}

async function start(token: string, keep: boolean): Promise<void> {
  const kind = await viewFor(token);
  signIn(token, keep);
  const gen = ++generation;
  const refresh = () => void poll(gen);
  if (kind === 'operator') {
    view = new OperatorView(refresh);
    who.textContent = 'Operator';
  } else {
    const tenantView = new TenantView(refresh, (message) => end(message), (name) => (who.textContent = `Tenant ${name}`));
    view = tenantView;
    who.textContent = 'Tenant';
    void tenantView.refreshAccount().catch((err: unknown) => showProblem(err));
  }
  signInSection.hidden = true;
  signOutButton.hidden = false;
  fill(app, view.element);
  tokenInput.value = '';
  await poll(gen);
  (view.element.querySelector('h1') as HTMLElement | null)?.setAttribute('tabindex', '-1');
  (view.element.querySelector('h1') as HTMLElement | null)?.focus();
}

function showProblem(err: unknown): void {
  if (err instanceof RequestError && err.status === 401) {
    end(`Signed out: the server refused the credential (${err.message})`);
    return;
  }
  status.textContent = `Could not refresh the figures: ${(err as Error).message} Retrying.`;
  status.className = 'status error';
}

let inFlight = false;
let again = false;

/** One refresh at a time: a change asked for meanwhile runs right after, and one timer follows. */
async function poll(gen: number): Promise<void> {
  if (inFlight) {
    again = true;
    return;
  }
  clearTimeout(timer);
  if (gen !== generation || !view) return;
  inFlight = true;
  try {
    if (document.visibilityState !== 'hidden') {
      await view.refresh();
      if (gen === generation) {
        status.textContent = `Updated ${new Date().toISOString().slice(11, 19)} UTC`;
        status.className = 'status';
      }
    }
  } catch (err) {
    if (gen === generation) showProblem(err);
  } finally {
    inFlight = false;
  }
  if (again) {
    again = false;
    return poll(generation);
  }
  if (gen === generation && view) timer = window.setTimeout(() => void poll(gen), POLL_MS);
}

/** Back to the sign-in form; the secret is forgotten. */
function end(message?: string): void {
  if (refreshToken) void callPublic('/v1/auth/logout', { refresh_token: refreshToken }).catch(() => {});
  refreshToken = null;
  generation++;
  clearTimeout(timer);
  signOut();
  view = null;
  fill(app);
  who.textContent = '';
  signOutButton.hidden = true;
  signInSection.hidden = false;
  status.textContent = '';
  signInError.textContent = message ?? '';
  tokenInput.focus();
}

form.addEventListener('submit', (ev) => {
  ev.preventDefault();
  const token = tokenInput.value.trim();
  signInError.textContent = '';
  if (!token) {
    signInError.textContent = 'Enter the admin token or an API key.';
    return;
  }
  const button = form.querySelector('button[type="submit"]') as HTMLButtonElement;
  button.disabled = true;
  start(token, remember.checked)
    .catch((err: unknown) => {
      signOut();
      signInError.textContent =
        err instanceof RequestError && (err.status === 401 || err.status === 403)
          ? `That token was refused: it is neither this server's admin token nor a valid API key. (${err.message})`
          : `Could not sign in: ${(err as Error).message}`;
      tokenInput.focus();
    })
    .finally(() => (button.disabled = false));
});
emailForm.addEventListener('submit', (ev) => {
  ev.preventDefault();
  emailError.textContent = '';
  const button = emailForm.querySelector('button[type="submit"]') as HTMLButtonElement;
  button.disabled = true;
  callPublic<{ access_token: string; refresh_token: string }>('/v1/auth/login', { email: emailInput.value.trim(), password: passwordInput.value })
    .then(async (session) => {
      passwordInput.value = '';
      await start(session.access_token, remember.checked);
      refreshToken = session.refresh_token;
    })
    .catch((err: unknown) => {
      emailError.textContent =
        err instanceof RequestError && err.status === 404
          ? 'Email sign-in is not enabled on this server (the operator sets SIGNUP_ENABLED=true). Use an API key above.'
          : `Could not sign in: ${(err as Error).message}`;
      passwordInput.focus();
    })
    .finally(() => (button.disabled = false));
});
signOutButton.addEventListener('click', () => end());
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible' && view) void poll(generation);
});

const kept = restore();
if (kept) void start(kept, true).catch(() => end('Your saved session ended: sign in again.'));
