// Pure logic of the business-hours editor: the form's model (intervals per weekday), its checks
// (times, past-midnight intervals, overlaps over the week, closed days, the time zone) and the body of
// `PUT /api/admin/hours`.
import { WEEKDAYS, type BusinessHours, type OpeningInterval, type Weekday } from "../../shared/offline";

export interface IntervalDraft {
  open: string;
  close: string;
}

export interface HoursDraft {
  enabled: boolean;
  timeZone: string;
  days: Record<Weekday, IntervalDraft[]>;
  closedDays: string[];
}

const DAY_MIN = 24 * 60;
const WEEK_MIN = 7 * DAY_MIN;

export function emptyDays(): Record<Weekday, IntervalDraft[]> {
  return { mon: [], tue: [], wed: [], thu: [], fri: [], sat: [], sun: [] };
}

/** The server's hours as the form edits them; unknown days are dropped. */
export function draftOf(h: BusinessHours): HoursDraft {
  const days = emptyDays();
  for (const i of h.weekly ?? []) {
    if (WEEKDAYS.includes(i.day)) days[i.day].push({ open: i.open, close: i.close });
  }
  for (const d of WEEKDAYS) days[d].sort((a, b) => a.open.localeCompare(b.open));
  return { enabled: !!h.enabled, timeZone: h.timeZone, days, closedDays: [...(h.closedDays ?? [])].sort() };
}

export function hoursOf(d: HoursDraft): BusinessHours {
  const weekly: OpeningInterval[] = WEEKDAYS.flatMap((day) => d.days[day].map((i) => ({ day, open: i.open.trim(), close: i.close.trim() })));
  return { enabled: d.enabled, timeZone: d.timeZone, weekly, closedDays: [...new Set(d.closedDays)].sort() };
}

/** Minutes after midnight of "HH:MM" (00:00–23:59; "24:00" only when `allow24`); null when not a time. */
export function minutesOf(s: string, allow24 = false): number | null {
  const m = /^(\d{2}):(\d{2})$/.exec(s.trim());
  if (!m) return null;
  const h = Number(m[1]);
  const min = Number(m[2]);
  if (allow24 && h === 24 && min === 0) return DAY_MIN;
  if (h > 23 || min > 59) return null;
  return h * 60 + min;
}

/** close <= open: the interval runs past midnight into the next day ("24:00" does not). */
export function pastMidnight(i: IntervalDraft): boolean {
  const o = minutesOf(i.open);
  const c = minutesOf(i.close, true);
  return o !== null && c !== null && c <= o;
}

export type HoursErrorCode = "open" | "close" | "same" | "overlap" | "zone" | "date" | "duplicateDate" | "noHours";

/** `field`: "mon.0.open", "mon.0.close", "mon.0" (the interval), "timeZone", "closedDay.2", "weekly". */
export interface HoursError {
  field: string;
  code: HoursErrorCode;
  /** For "overlap": the other interval's field ("tue.0"). */
  other?: string;
}

/** [start, end) minutes of the week (Monday 00:00 = 0); an end past the week wraps to Monday. */
function spanOf(dayIndex: number, i: IntervalDraft): [number, number] | null {
  const o = minutesOf(i.open);
  const c = minutesOf(i.close, true);
  if (o === null || c === null || o === c) return null;
  const start = dayIndex * DAY_MIN + o;
  const end = dayIndex * DAY_MIN + (c <= o ? c + DAY_MIN : c);
  return [start, end];
}

function overlaps(a: [number, number], b: [number, number]): boolean {
  // Compare on the circle of the week: b also one week earlier and later.
  for (const shift of [-WEEK_MIN, 0, WEEK_MIN]) {
    if (a[0] < b[1] + shift && b[0] + shift < a[1]) return true;
  }
  return false;
}

export function isDate(s: string): boolean {
  const m = /^(\d{4})-(\d{2})-(\d{2})$/.exec(s);
  if (!m) return false;
  const d = new Date(Date.UTC(Number(m[1]), Number(m[2]) - 1, Number(m[3])));
  return d.getUTCFullYear() === Number(m[1]) && d.getUTCMonth() === Number(m[2]) - 1 && d.getUTCDate() === Number(m[3]);
}

/**
 * Everything wrong with the draft, in the form's order. `zones`: the IANA names the browser knows
 * (an empty list accepts any non-empty name).
 */
export function validateHours(d: HoursDraft, zones: readonly string[]): HoursError[] {
  const errors: HoursError[] = [];
  if (!d.timeZone.trim() || (zones.length > 0 && !zones.includes(d.timeZone))) errors.push({ field: "timeZone", code: "zone" });
  const spans: Array<{ field: string; span: [number, number] }> = [];
  WEEKDAYS.forEach((day, dayIndex) => {
    d.days[day].forEach((i, n) => {
      const field = `${day}.${n}`;
      const o = minutesOf(i.open);
      const c = minutesOf(i.close, true);
      if (o === null) errors.push({ field: `${field}.open`, code: "open" });
      if (c === null) errors.push({ field: `${field}.close`, code: "close" });
      if (o === null || c === null) return;
      if (o === c) {
        errors.push({ field, code: "same" });
        return;
      }
      const span = spanOf(dayIndex, i)!;
      const clash = spans.find((s) => overlaps(s.span, span));
      if (clash) errors.push({ field, code: "overlap", other: clash.field });
      spans.push({ field, span });
    });
  });
  const seen = new Set<string>();
  d.closedDays.forEach((date, n) => {
    if (!isDate(date)) errors.push({ field: `closedDay.${n}`, code: "date" });
    else if (seen.has(date)) errors.push({ field: `closedDay.${n}`, code: "duplicateDate" });
    seen.add(date);
  });
  if (d.enabled && spans.length === 0 && !errors.some((e) => e.field.includes("."))) errors.push({ field: "weekly", code: "noHours" });
  return errors;
}

/** The IANA names to offer; the current one first if the browser does not list it. */
export function timeZones(current: string, supported: () => string[] = defaultZones): string[] {
  let list: string[] = [];
  try {
    list = supported();
  } catch {
    list = [];
  }
  if (!list.includes("UTC")) list = ["UTC", ...list];
  if (current && !list.includes(current)) list = [current, ...list];
  return list;
}

function defaultZones(): string[] {
  const i = Intl as unknown as { supportedValuesOf?: (key: string) => string[] };
  return i.supportedValuesOf ? i.supportedValuesOf("timeZone") : [];
}

/** A new interval for a day: after the day's last one, else 09:00–18:00. */
export function nextInterval(existing: readonly IntervalDraft[]): IntervalDraft {
  const last = existing[existing.length - 1];
  if (!last) return { open: "09:00", close: "18:00" };
  const c = minutesOf(last.close, true);
  if (c === null || pastMidnight(last) || c >= DAY_MIN - 60) return { open: "09:00", close: "18:00" };
  const fmt = (m: number) => `${String(Math.floor(m / 60)).padStart(2, "0")}:${String(m % 60).padStart(2, "0")}`;
  return { open: fmt(c + 60), close: fmt(Math.min(c + 180, DAY_MIN)) };
}
