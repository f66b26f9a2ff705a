// Pure logic of the reports view: every day of the period (days without a conversation count 0),
// bar heights, durations people read, and the agents' table.
import type { MessageKey } from "../../shared/i18n";
import type { AgentReport, ReportsResponse } from "../../shared/protocol";

export const REPORT_PERIODS = [7, 30, 90] as const;

export interface DayCount {
  date: string;
  conversations: number;
}

function utcDate(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/**
 * One entry per day from the first to the last day the report covers (by the dates the server
 * lists, else by `from` and `to`), in order; days the server left out count 0.
 */
export function fillDays(r: Pick<ReportsResponse, "from" | "to" | "days">): DayCount[] {
  const known = new Map(r.days.map((d) => [d.date, d.conversations]));
  const dates = r.days.map((d) => d.date).sort();
  const start = Date.parse(`${(Number.isNaN(Date.parse(r.from)) ? dates[0] : utcDate(Date.parse(r.from))) ?? ""}T00:00:00Z`);
  const end = Date.parse(`${(Number.isNaN(Date.parse(r.to)) ? dates[dates.length - 1] : utcDate(Date.parse(r.to))) ?? ""}T00:00:00Z`);
  if (Number.isNaN(start) || Number.isNaN(end) || end < start || end - start > 400 * 86_400_000) {
    return dates.map((date) => ({ date, conversations: known.get(date) ?? 0 }));
  }
  const out: DayCount[] = [];
  for (let t = start; t <= end; t += 86_400_000) {
    const date = utcDate(t);
    out.push({ date, conversations: known.get(date) ?? 0 });
    known.delete(date);
  }
  // Dates outside from..to (a server counting in another time zone): kept, in order.
  if (known.size > 0) {
    for (const [date, conversations] of known) out.push({ date, conversations });
    out.sort((a, b) => a.date.localeCompare(b.date));
  }
  return out;
}

/** Bar heights in percent of the busiest day (a busy day is 100; a day with one is still visible). */
export function barHeights(days: readonly DayCount[]): number[] {
  const max = Math.max(0, ...days.map((d) => d.conversations));
  return days.map((d) => (max === 0 || d.conversations === 0 ? 0 : Math.max(2, (d.conversations / max) * 100)));
}

/** A nice top value for the chart's scale: 1, 2, 5, 10, 20, 50, … at least `max`. */
export function niceMax(max: number): number {
  if (max <= 1) return 1;
  const p = 10 ** Math.floor(Math.log10(max));
  for (const m of [1, 2, 5, 10]) if (m * p >= max) return m * p;
  return 10 * p;
}

export interface DurationText {
  key: MessageKey;
  params: Record<string, number>;
}

/** 45 s, 3 min 20 s, 12 min, 1 h 5 min, 2 d 3 h. */
export function durationText(seconds: number): DurationText {
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return { key: "duration.s", params: { s } };
  if (s < 600) return { key: "duration.ms", params: { m: Math.floor(s / 60), s: s % 60 } };
  if (s < 3600) return { key: "duration.m", params: { m: Math.round(s / 60) } };
  if (s < 86_400) {
    const m = Math.round(s / 60);
    return { key: "duration.hm", params: { h: Math.floor(m / 60), m: m % 60 } };
  }
  const h = Math.round(s / 3600);
  return { key: "duration.dh", params: { d: Math.floor(h / 24), h: h % 24 } };
}

/** CSAT average with one decimal ("4.0"), or null without ratings. */
export function csatText(csat: AgentReport["csat"]): string | null {
  if (!csat || csat.count === 0 || !Number.isFinite(csat.average)) return null;
  return csat.average.toFixed(1);
}

/** The agents' table: the busiest first, then by name. */
export function sortAgentReports(list: readonly AgentReport[], locale: string): AgentReport[] {
  const collator = new Intl.Collator(locale, { sensitivity: "base", numeric: true });
  return list
    .slice()
    .sort(
      (a, b) =>
        b.conversations - a.conversations ||
        collator.compare(a.agent.displayName, b.agent.displayName) ||
        a.agent.id.localeCompare(b.agent.id),
    );
}

/**
 * Abandoned conversations of the period and the median wait before abandoning (null: nobody
 * abandoned); null when the server does not report them (an older server).
 */
export function abandonOf(r: { abandoned?: unknown; abandonWaitSeconds?: unknown }): { count: number; waitSeconds: number | null } | null {
  if (typeof r.abandoned !== "number" || !Number.isFinite(r.abandoned)) return null;
  const w = r.abandonWaitSeconds;
  return { count: Math.max(0, Math.round(r.abandoned)), waitSeconds: typeof w === "number" && Number.isFinite(w) && w >= 0 ? w : null };
}
