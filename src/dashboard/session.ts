/**
 * The signed-in secret. Kept in this page's memory; only when the user asks, also in this
 * tab's sessionStorage (same origin only, gone when the tab closes). Never in a URL, a cookie
 * or localStorage.
 */
const KEY = 'embedding-cache.dashboard.token';
let token: string | null = null;

export function currentToken(): string | null {
  return token;
}

export function signIn(secret: string, rememberInTab: boolean): void {
  token = secret;
  if (rememberInTab) sessionStorage.setItem(KEY, secret);
  else sessionStorage.removeItem(KEY);
}

export function signOut(): void {
  token = null;
  sessionStorage.removeItem(KEY);
}

/** A token this tab kept from before a reload, if the user asked for that. */
export function restore(): string | null {
  token = sessionStorage.getItem(KEY);
  return token;
}
