// Pure logic of the admin's conversation finder: the search query sent to
// `GET /api/admin/conversations`, pages put together, and what a row shows.
import type { EndedAs } from "../../shared/offline";
import type { AdminConversation, ConversationStatus, Id, Timestamp } from "../../shared/protocol";

export type StatusFilter = "all" | ConversationStatus;
export const STATUS_FILTERS: readonly StatusFilter[] = ["all", "open", "resolved"];
export function isStatusFilter(v: unknown): v is StatusFilter {
  return typeof v === "string" && (STATUS_FILTERS as readonly string[]).includes(v);
}

/** Rows asked for at a time ("More" asks for the next ones). */
export const PAGE_SIZE = 25;

/**
 * What is searched for: the text typed, trimmed, its inner spaces single; an id may be written `#41`
 * (as the list shows it).
 */
export function searchTerm(input: string): string {
  const s = input.trim().replace(/\s+/g, " ");
  return /^#\d+$/.test(s) ? s.slice(1) : s;
}

export interface ConversationSearch {
  q: string;
  status: StatusFilter;
  /** The cursor: the `nextBefore` of the page before. */
  before?: Id | null;
  limit?: number;
}

/** The query string of a search, `?…`; defaults (no text, every status) are left out. */
export function conversationQuery(s: ConversationSearch): string {
  const params = new URLSearchParams();
  const q = searchTerm(s.q);
  if (q) params.set("q", q);
  if (s.status !== "all") params.set("status", s.status);
  if (s.before) params.set("before", s.before);
  params.set("limit", String(s.limit ?? PAGE_SIZE));
  return `?${params.toString()}`;
}

/** The list after the next page: newest first, each conversation once (a new one may shift pages). */
export function appendPage(list: readonly AdminConversation[], page: readonly AdminConversation[]): AdminConversation[] {
  const seen = new Set(list.map((c) => c.id));
  return [...list, ...page.filter((c) => !seen.has(c.id))];
}

/** A date and time to the minute, in the reader's language (24-hour clock). */
export function formatWhen(ts: Timestamp, locale: string, timeZone?: string): string {
  return new Intl.DateTimeFormat(locale, {
    year: "numeric",
    month: "short",
    day: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    hourCycle: "h23",
    ...(timeZone ? { timeZone } : {}),
  }).format(new Date(ts));
}

export interface ConversationRow {
  id: Id;
  /** `#41`, as searched for. */
  label: string;
  customerName: string;
  /** The e-mail, else the user name. */
  contact: string;
  /** null: waiting in the queue. */
  agentName: string | null;
  status: ConversationStatus;
  started: string;
  startedAt: Timestamp;
  resolved: string | null;
  /** 1..5, or null when not rated. */
  rating: number | null;
  messages: number;
  /** Left through the offline form. */
  offline: boolean;
  /** How it ended besides a resolve by its agent: abandoned in the queue, or idle. */
  endedAs: EndedAs | null;
}

export function conversationRow(c: AdminConversation, locale: string, timeZone?: string): ConversationRow {
  const email = c.customer.email?.trim();
  const rating = typeof c.rating === "number" && c.rating >= 1 && c.rating <= 5 ? Math.round(c.rating) : null;
  return {
    id: c.id,
    label: `#${c.id}`,
    customerName: c.customer.displayName.trim() || (c.customer.username ?? ""),
    contact: email || (c.customer.username ?? ""),
    agentName: c.agent?.displayName ?? null,
    status: c.status,
    started: formatWhen(c.createdAt, locale, timeZone),
    startedAt: c.createdAt,
    resolved: c.resolvedAt ? formatWhen(c.resolvedAt, locale, timeZone) : null,
    rating,
    messages: Math.max(0, c.messages),
    offline: c.offline === true,
    endedAs: endedAsOf(c.endedAs),
  };
}

/** A known `endedAs`, else null (an older server sends none). */
export function endedAsOf(v: unknown): EndedAs | null {
  return v === "abandoned" || v === "idle" ? v : null;
}

/** Five stars, the first `rating` of them filled. */
export function stars(rating: number): string {
  const n = Math.max(0, Math.min(5, Math.round(rating)));
  return "★".repeat(n) + "☆".repeat(5 - n);
}
