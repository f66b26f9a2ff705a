// Pure logic of the node list: uptime from `startedAt`, and totals over several nodes.
import type { NodeSummary, Timestamp } from "../../shared/protocol";

/** Milliseconds since `startedAt`; 0 for a start in the future (a clock ahead of ours) or a bad date. */
export function uptimeMs(startedAt: Timestamp, now: number): number {
  const t = Date.parse(startedAt);
  if (Number.isNaN(t)) return 0;
  return Math.max(0, now - t);
}

const UNITS = {
  en: { d: "d", h: "h", m: "m", s: "s", sep: " " },
  "zh-CN": { d: "天", h: "小时", m: "分", s: "秒", sep: "" },
} as const;

/**
 * A short uptime with its two largest units: "42s", "12m 05s", "5h 03m", "3d 4h"
 * ("42秒", "12分05秒", "5小时03分", "3天4小时" in Chinese).
 */
export function formatUptime(ms: number, locale: string): string {
  const u = locale.toLowerCase().startsWith("zh") ? UNITS["zh-CN"] : UNITS.en;
  const total = Math.floor(Math.max(0, ms) / 1000);
  const days = Math.floor(total / 86_400);
  const hours = Math.floor((total % 86_400) / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const seconds = total % 60;
  const pad = (n: number) => String(n).padStart(2, "0");
  if (days > 0) return `${days}${u.d}${u.sep}${hours}${u.h}`;
  if (hours > 0) return `${hours}${u.h}${u.sep}${pad(minutes)}${u.m}`;
  if (minutes > 0) return `${minutes}${u.m}${u.sep}${pad(seconds)}${u.s}`;
  return `${seconds}${u.s}`;
}

export type NodeTotals = Omit<NodeSummary, "id" | "startedAt">;

export function nodeTotals(nodes: readonly NodeSummary[]): NodeTotals {
  const t: NodeTotals = { connections: 0, onlineUsers: 0, onlineAgents: 0, openConversations: 0 };
  for (const n of nodes) {
    t.connections += n.connections;
    t.onlineUsers += n.onlineUsers;
    t.onlineAgents += n.onlineAgents;
    t.openConversations += n.openConversations;
  }
  return t;
}

/** Nodes by id, so cards do not move between refreshes. */
export function sortNodes(nodes: readonly NodeSummary[]): NodeSummary[] {
  return nodes.slice().sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}
