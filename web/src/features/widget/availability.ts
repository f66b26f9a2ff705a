// Pure logic of what the chat says before and while a customer waits, from `GET /api/availability`:
// chat as usual (open), the real wait (busy), or the offline form (away: nobody available now;
// closed: outside business hours, with when the shop opens). It never promises a place in line when
// nobody is there to take it.
import type { Availability, RequestedAgent } from "../../shared/offline";
import { waitMinutes } from "./queue";

/** How often the open chat asks again. */
export const AVAILABILITY_EVERY_MS = 30_000;

export interface WidgetSituation {
  /** null: not known (not asked yet, or the server could not say): the chat works as it always did. */
  availability: Availability | null;
  /** An agent has the customer's open conversation. */
  hasAgent: boolean;
  /** The customer's open conversation waits in the queue. */
  queued: boolean;
  /** The open conversation was left through the offline form (we reply by e-mail too). */
  leftOffline: boolean;
}

export type WidgetView =
  /** Chat as today: the composer; an agent's name, or nothing yet. */
  | { kind: "chat" }
  /** In the queue: the place and wait `queue_position` says. */
  | { kind: "queue" }
  /** Not written yet, every agent full: a newcomer's place and the server's estimate. */
  | { kind: "busy"; place: number; waitMinutes: number | null }
  /** Nobody can answer now: the offline form. */
  | { kind: "offline"; reason: "away" | "closed"; opensAt: number | null; timeZone: string }
  /** A message left offline waits: we answer here and by e-mail. */
  | { kind: "left" };

function valid(a: Availability | null): a is Availability {
  return !!a && (a.state === "open" || a.state === "busy" || a.state === "away" || a.state === "closed");
}

export function widgetView(s: WidgetSituation): WidgetView {
  // An agent has it: what the agent says (and the "away" line of that agent) is what counts.
  if (s.hasAgent) return { kind: "chat" };
  if (s.leftOffline) return { kind: "left" };
  const a = s.availability;
  if (!valid(a)) return s.queued ? { kind: "queue" } : { kind: "chat" };
  switch (a.state) {
    case "open":
      return s.queued ? { kind: "queue" } : { kind: "chat" };
    case "busy": {
      if (s.queued) return { kind: "queue" };
      const e = a.estimateSeconds;
      const queueLength = Number.isFinite(a.queueLength) && a.queueLength > 0 ? Math.floor(a.queueLength) : 0;
      return {
        kind: "busy",
        place: queueLength + 1,
        waitMinutes: typeof e === "number" && Number.isFinite(e) && e >= 0 ? waitMinutes(e) : null,
      };
    }
    case "away":
    case "closed":
      // Even a conversation already in line: nobody is there to answer it, so no place is promised.
      return { kind: "offline", reason: a.state, opensAt: a.state === "closed" ? a.opensAt : null, timeZone: a.timeZone };
  }
}

/** The offline form is shown instead of the composer. */
export const showsOfflineForm = (v: WidgetView) => v.kind === "offline";

/** The visitor's own time zone (the browser's). */
export function localTimeZone(): string {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  } catch {
    return "UTC";
  }
}

function isZone(z: string): boolean {
  try {
    new Intl.DateTimeFormat("en", { timeZone: z });
    return true;
  } catch {
    return false;
  }
}

/** "2026-12-07" of an instant in a time zone. */
function dayIn(ms: number, timeZone: string): string {
  return new Intl.DateTimeFormat("en-CA", { timeZone, year: "numeric", month: "2-digit", day: "2-digit" }).format(ms);
}

function daysBetween(a: string, b: string): number {
  return Math.round((Date.parse(`${b}T00:00:00Z`) - Date.parse(`${a}T00:00:00Z`)) / 86_400_000);
}

export type DayWord = "today" | "tomorrow" | null;

/** One instant as a person in `timeZone` reads it: "today"/"tomorrow" + the time, else the date and time. */
export interface ZonedTime {
  day: DayWord;
  /** "Mon, Dec 14" when `day` is null, else "". */
  date: string;
  /** "09:00" (24-hour; the zh locale's own). */
  time: string;
  timeZone: string;
}

export function zonedTime(ms: number, timeZone: string, locale: string, now: number): ZonedTime {
  const diff = daysBetween(dayIn(now, timeZone), dayIn(ms, timeZone));
  const day: DayWord = diff === 0 ? "today" : diff === 1 ? "tomorrow" : null;
  const date = day ? "" : new Intl.DateTimeFormat(locale, { timeZone, weekday: "short", month: "short", day: "numeric" }).format(ms);
  const time = new Intl.DateTimeFormat(locale, { timeZone, hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).format(ms);
  return { day, date, time, timeZone };
}

export interface OpensAt {
  /** In the visitor's time zone. */
  local: ZonedTime;
  /** In the shop's, when it reads differently from the visitor's (another zone and another clock); else null. */
  shop: ZonedTime | null;
}

/**
 * When the shop opens, in the visitor's time and, when that differs, the shop's (named by its IANA
 * zone). null: no opening is scheduled, or the instant is not a number.
 */
export function opensAtParts(opensAt: number | null, shopZone: string, locale: string, now: number, viewerZone = localTimeZone()): OpensAt | null {
  if (typeof opensAt !== "number" || !Number.isFinite(opensAt)) return null;
  const viewer = isZone(viewerZone) ? viewerZone : "UTC";
  const local = zonedTime(opensAt, viewer, locale, now);
  if (!isZone(shopZone) || shopZone === viewer) return { local, shop: null };
  const shop = zonedTime(opensAt, shopZone, locale, now);
  const same = shop.time === local.time && shop.day === local.day && shop.date === local.date;
  return { local, shop: same ? null : shop };
}

/** "14:05" in the visitor's time: until when a conversation waits for the agent it asked for. */
export function clockTime(ms: number, locale: string, timeZone = localTimeZone()): string {
  return new Intl.DateTimeFormat(locale, { timeZone: isZone(timeZone) ? timeZone : "UTC", hour: "2-digit", minute: "2-digit", hourCycle: "h23" }).format(ms);
}

/**
 * The agent the customer asked for is offline, and the conversation waits for it until a time still
 * to come: say so. null when there is nothing to say (online, not asked for, or the wait is over).
 */
export function requestedAgentWait(r: RequestedAgent | null | undefined, now: number): { waitsUntil: number | null } | null {
  if (!r || r.online) return null;
  if (typeof r.waitsUntil === "number" && Number.isFinite(r.waitsUntil)) {
    return r.waitsUntil > now ? { waitsUntil: r.waitsUntil } : null;
  }
  return { waitsUntil: null };
}
