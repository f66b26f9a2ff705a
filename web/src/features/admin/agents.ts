// Pure logic of the agent list: ordering, search, totals, and what the admin may do with a row.
import type { AgentSummary, Id, User } from "../../shared/protocol";
import { MAX_CAPACITY, MIN_CAPACITY } from "../../shared/protocol";

export type AgentSort = "name" | "status" | "load";
export const AGENT_SORTS: readonly AgentSort[] = ["name", "status", "load"];

export function isAgentSort(v: unknown): v is AgentSort {
  return typeof v === "string" && (AGENT_SORTS as readonly string[]).includes(v);
}

function byName(locale: string) {
  const collator = new Intl.Collator(locale, { sensitivity: "base", numeric: true });
  return (a: AgentSummary, b: AgentSummary) =>
    collator.compare(a.displayName, b.displayName) || collator.compare(a.username, b.username) || a.id.localeCompare(b.id);
}

/** Online and enabled first, then offline, then disabled accounts. */
function availability(a: AgentSummary): number {
  if (a.disabled) return 2;
  return a.online ? 0 : 1;
}

/**
 * A new, sorted array. "name" is alphabetical (display name, then username), so rows stay put
 * while presence changes; "status" puts online accounts first; "load" the busiest first.
 */
export function sortAgents(list: readonly AgentSummary[], sort: AgentSort, locale: string): AgentSummary[] {
  const name = byName(locale);
  const out = list.slice();
  switch (sort) {
    case "name":
      return out.sort(name);
    case "status":
      return out.sort((a, b) => availability(a) - availability(b) || name(a, b));
    case "load":
      return out.sort(
        (a, b) => b.openConversations - a.openConversations || b.connections - a.connections || name(a, b),
      );
  }
}

/** Accounts whose display name or username contains every word of `query` (case-insensitive). */
export function filterAgents(list: readonly AgentSummary[], query: string): AgentSummary[] {
  const words = query.toLocaleLowerCase().split(/\s+/).filter(Boolean);
  if (words.length === 0) return list.slice();
  return list.filter((a) => {
    const text = `${a.displayName} ${a.username}`.toLocaleLowerCase();
    return words.every((w) => text.includes(w));
  });
}

export interface AgentTotals {
  accounts: number;
  online: number;
  disabled: number;
  openConversations: number;
}

export function agentTotals(list: readonly AgentSummary[]): AgentTotals {
  const t: AgentTotals = { accounts: list.length, online: 0, disabled: 0, openConversations: 0 };
  for (const a of list) {
    if (a.online) t.online++;
    if (a.disabled) t.disabled++;
    t.openConversations += a.openConversations;
  }
  return t;
}

/** The server refuses an admin disabling itself; the page does not offer it. */
export function canDisable(agent: AgentSummary, me: Id): boolean {
  return agent.id !== me && !agent.disabled;
}

/** A just-created account, shown at once (offline, no load) until the next refresh brings it. */
export function withCreated(list: readonly AgentSummary[], user: User): AgentSummary[] {
  if (list.some((a) => a.id === user.id)) return list.slice();
  return [
    ...list,
    { ...user, disabled: false, online: false, connections: 0, openConversations: 0, capacity: DEFAULT_CAPACITY, status: "available" },
  ];
}

/** The row after a successful enable or disable: disabling also ends every connection. */
export function withDisabled(list: readonly AgentSummary[], id: Id, disabled: boolean): AgentSummary[] {
  return list.map((a) =>
    a.id !== id ? a : disabled ? { ...a, disabled, online: false, connections: 0 } : { ...a, disabled },
  );
}

/** A new agent's capacity on the server. */
export const DEFAULT_CAPACITY = 5;

/** The capacity typed in the list: a whole number from 1 to 100, else null. */
export function parseCapacity(input: string | number): number | null {
  const v = typeof input === "number" ? input : input.trim() === "" ? NaN : Number(input.trim());
  return Number.isInteger(v) && v >= MIN_CAPACITY && v <= MAX_CAPACITY ? v : null;
}

/** The row after a successful capacity change. */
export function withCapacity(list: readonly AgentSummary[], id: Id, capacity: number): AgentSummary[] {
  return list.map((a) => (a.id === id ? { ...a, capacity } : a));
}

/** Routing only gives customers to agents (admins are never routed automatically). */
export function hasCapacity(a: AgentSummary): boolean {
  return a.role === "agent";
}

/**
 * What the availability column says: an agent's own choice (available, away); `none` for an admin or
 * a disabled account, which routing never gives a conversation (the server still reports a status).
 */
export function availabilityOf(a: AgentSummary): "available" | "away" | "none" {
  if (!hasCapacity(a) || a.disabled) return "none";
  return a.status === "away" ? "away" : "available";
}
