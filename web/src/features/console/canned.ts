// Pure logic of canned replies: the "/" query typed at the start of the composer, which replies
// match it, moving through the list with the keyboard, and filling in the placeholders on insert.
import type { CannedReply } from "../../shared/protocol";

/** `/` then 1–32 of a-z 0-9 _ - (the server's rule). */
export const SHORTCUT_RE = /^\/[a-z0-9_-]{1,32}$/;

/**
 * The shortcut being typed: the draft is a `/` followed only by shortcut characters (none yet is
 * fine: "/" lists everything). Anything else (a space, a second line) closes the list.
 */
export function cannedQuery(draft: string): string | null {
  const m = /^\/([a-z0-9_-]{0,32})$/i.exec(draft);
  return m ? `/${m[1]!.toLowerCase()}` : null;
}

/**
 * The replies for a query: shortcuts that start with it first, then those that contain it; by
 * shortcut within each, and personal before shared for the same shortcut.
 */
export function filterCanned(replies: readonly CannedReply[], query: string): CannedReply[] {
  const q = query.replace(/^\//, "").toLowerCase();
  const order = (a: CannedReply, b: CannedReply) =>
    a.shortcut.localeCompare(b.shortcut) || Number(a.shared) - Number(b.shared) || a.id.localeCompare(b.id);
  const prefix: CannedReply[] = [];
  const inside: CannedReply[] = [];
  for (const r of replies) {
    const s = r.shortcut.replace(/^\//, "").toLowerCase();
    if (s.startsWith(q)) prefix.push(r);
    else if (q && s.includes(q)) inside.push(r);
  }
  return [...prefix.sort(order), ...inside.sort(order)];
}

export type SuggestionAction = { type: "move"; delta: 1 | -1 } | { type: "insert" } | { type: "close" } | null;

/** What a key does while the list is open: ↑/↓ move, Enter or Tab insert, Esc closes. */
export function suggestionKey(key: string, modifiers: { shift?: boolean; composing?: boolean } = {}): SuggestionAction {
  if (modifiers.composing) return null;
  switch (key) {
    case "ArrowDown":
      return { type: "move", delta: 1 };
    case "ArrowUp":
      return { type: "move", delta: -1 };
    case "Enter":
      return modifiers.shift ? null : { type: "insert" };
    case "Tab":
      return modifiers.shift ? null : { type: "insert" };
    case "Escape":
      return { type: "close" };
    default:
      return null;
  }
}

/** The next highlighted row, wrapping around at both ends; -1 for an empty list. */
export function moveSelection(index: number, delta: number, count: number): number {
  if (count <= 0) return -1;
  const i = index < 0 ? (delta > 0 ? -1 : 0) : index;
  return (((i + delta) % count) + count) % count;
}

export interface PlaceholderValues {
  customerName: string;
  agentName: string;
}

/** `{{customer.name}}` and `{{agent.name}}` (spaces inside the braces allowed); others stay as typed. */
export function fillPlaceholders(content: string, v: PlaceholderValues): string {
  return content.replace(/\{\{\s*(customer|agent)\.name\s*\}\}/g, (_all, who: string) =>
    who === "customer" ? v.customerName : v.agentName,
  );
}

/** What the manager's shortcut field becomes: trimmed, lower-case, with its leading "/". */
export function normalizeShortcut(input: string): string {
  const s = input.trim().toLowerCase();
  return s.startsWith("/") ? s : `/${s}`;
}

/** Personal replies can be changed by their owner; shared ones by admins only. */
export function canEditReply(reply: CannedReply, isAdmin: boolean): boolean {
  return !reply.shared || isAdmin;
}
