// Tokens kept in localStorage: a visitor's (to come back to the same conversation, in any tab) and
// a staff member's, one per app so signing out of the admin page does not sign the console out.
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

export function clearSession(slot: SessionSlot): void {
  try {
    window.localStorage.removeItem(key(slot));
  } catch {
    // Nothing stored.
  }
}
