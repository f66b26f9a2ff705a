// Tokens kept in localStorage: a visitor's (to come back to the same conversation, in any tab) and
// a staff member's, one per app so signing out of the admin page does not sign the console out.
import { api } from "./api";
import type { SessionResponse, User } from "./protocol";

export type SessionSlot = "visitor" | "console" | "admin";

const key = (slot: SessionSlot) => `kefu.session.${slot}`;

function isUser(v: unknown): v is User {
  if (typeof v !== "object" || v === null) return false;
  const u = v as Record<string, unknown>;
  return (
    typeof u.id === "string" &&
    (u.role === "customer" || u.role === "agent" || u.role === "admin") &&
    typeof u.username === "string" &&
    typeof u.displayName === "string"
  );
}

export function parseSession(raw: string | null): SessionResponse | null {
  if (!raw) return null;
  try {
    const v = JSON.parse(raw) as unknown;
    if (typeof v !== "object" || v === null) return null;
    const s = v as Record<string, unknown>;
    if (typeof s.token !== "string" || !s.token || !isUser(s.user)) return null;
    return { token: s.token, user: s.user };
  } catch {
    return null;
  }
}

export function loadSession(slot: SessionSlot): SessionResponse | null {
  try {
    return parseSession(window.localStorage.getItem(key(slot)));
  } catch {
    return null;
  }
}

export function saveSession(slot: SessionSlot, s: SessionResponse): void {
  try {
    window.localStorage.setItem(key(slot), JSON.stringify({ token: s.token, user: s.user }));
  } catch {
    // Storage blocked: the session lasts as long as the page.
  }
}

/**
 * Forgets the stored session of `slot`; with `token`, only if it is that session: another tab of the
 * app may have signed in anew since this one's token stopped working.
 */
export function clearSession(slot: SessionSlot, token?: string): void {
  try {
    const stored = parseSession(window.localStorage.getItem(key(slot)));
    if (token !== undefined && stored && stored.token !== token) return;
    window.localStorage.removeItem(key(slot));
  } catch {
    // Nothing stored.
  }
}

/** How long a sign-out waits for the server before it signs this page out anyway. */
export const LOGOUT_TIMEOUT_MS = 5000;

/**
 * The user's own "Sign out": the server revokes every token of the account (so its other tabs and
 * devices are signed out too), then the stored session is forgotten. It is forgotten whatever the
 * server answered, or if it did not answer in time: a failed request (offline, a token it already
 * refuses) must not keep anyone signed in.
 */
export async function signOutEverywhere(slot: SessionSlot, token: string, timeoutMs = LOGOUT_TIMEOUT_MS): Promise<void> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  try {
    await api.logout(token, abort.signal);
  } catch {
    // Signed out on this page all the same.
  } finally {
    clearTimeout(timer);
  }
  clearSession(slot, token);
}
