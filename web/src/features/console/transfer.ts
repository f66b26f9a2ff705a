// Pure logic of the transfer dialog: who can take a conversation now, and why not the others.
import type { AvailableAgent, Id } from "../../shared/protocol";

export type Ineligible = "offline" | "away" | "full";

export interface TransferTarget {
  agent: AvailableAgent;
  /** Why the server would refuse this agent now (`conflict`); null when it can take it. */
  blocked: Ineligible | null;
}

/** Why an agent cannot take one more conversation now, or null: online, available, below capacity. */
export function ineligible(a: AvailableAgent): Ineligible | null {
  if (!a.online) return "offline";
  if (a.status !== "available") return "away";
  if (a.openConversations >= a.capacity) return "full";
  return null;
}

/**
 * Everyone but me: those who can take it first (most free capacity first), then the others; by
 * name within each.
 */
export function transferTargets(agents: readonly AvailableAgent[], me: Id, locale = "en"): TransferTarget[] {
  const collator = new Intl.Collator(locale, { sensitivity: "base", numeric: true });
  const rank: Record<Ineligible, number> = { full: 1, away: 2, offline: 3 };
  return agents
    .filter((a) => a.id !== me)
    .map((agent) => ({ agent, blocked: ineligible(agent) }))
    .sort((x, y) => {
      const rx = x.blocked ? rank[x.blocked] : 0;
      const ry = y.blocked ? rank[y.blocked] : 0;
      if (rx !== ry) return rx - ry;
      const fx = x.agent.capacity - x.agent.openConversations;
      const fy = y.agent.capacity - y.agent.openConversations;
      if (!x.blocked && fx !== fy) return fy - fx;
      return collator.compare(x.agent.displayName, y.agent.displayName) || x.agent.id.localeCompare(y.agent.id);
    });
}

/** The first agent who can take it: what the dialog selects when it opens (else "the queue"). */
export function defaultTarget(targets: readonly TransferTarget[]): Id | null {
  return targets.find((t) => !t.blocked)?.agent.id ?? null;
}
