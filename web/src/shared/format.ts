// Small display helpers: initials, avatar colours, times, ids.
import type { Timestamp } from "./protocol";

/** Up to two letters for an avatar: "Ann Lee" -> "AL", "王小明" -> "小明", "visitor-7f3a" -> "V". */
export function initials(name: string): string {
  const trimmed = name.trim();
  if (!trimmed) return "?";
  const chars = Array.from(trimmed);
  // CJK names: the last two characters read naturally (given name).
  if (/^[\u3400-\u9fff\uf900-\ufaff]/u.test(trimmed) && !/\s/.test(trimmed)) {
    return chars.slice(-2).join("");
  }
  const words = trimmed.split(/[\s._-]+/).filter((w) => /\p{L}/u.test(w));
  const first = words[0] ?? trimmed;
  const second = words.length > 1 ? words[words.length - 1] : undefined;
  const a = Array.from(first)[0] ?? "";
  const b = second ? (Array.from(second)[0] ?? "") : "";
  return (a + b).toUpperCase();
}

const HUES = [210, 168, 262, 24, 330, 140, 190, 45];

/** A calm, stable hue per user id. */
export function avatarHue(id: string): number {
  let h = 0;
  for (const c of id) h = (h * 31 + c.charCodeAt(0)) >>> 0;
  return HUES[h % HUES.length]!;
}

export function formatTime(ts: Timestamp, locale: string): string {
  return new Date(ts).toLocaleTimeString(locale, { hour: "2-digit", minute: "2-digit" });
}

/** "Today", "Yesterday" (already translated by the caller) or a date. */
export function formatDay(ts: Timestamp, locale: string, labels: { today: string; yesterday: string }, now = new Date()): string {
  const d = new Date(ts);
  const startOf = (x: Date) => new Date(x.getFullYear(), x.getMonth(), x.getDate()).getTime();
  const diffDays = Math.round((startOf(now) - startOf(d)) / 86_400_000);
  if (diffDays === 0) return labels.today;
  if (diffDays === 1) return labels.yesterday;
  return d.toLocaleDateString(locale, {
    year: d.getFullYear() === now.getFullYear() ? undefined : "numeric",
    month: "short",
    day: "numeric",
  });
}

/** A short time for a list preview: the time today, else the date. */
export function formatShort(ts: Timestamp, locale: string, now = new Date()): string {
  const d = new Date(ts);
  if (d.toDateString() === now.toDateString()) return formatTime(ts, locale);
  return d.toLocaleDateString(locale, { month: "numeric", day: "numeric" });
}

export function newClientMsgId(): string {
  if (typeof crypto !== "undefined" && typeof crypto.randomUUID === "function") return crypto.randomUUID();
  return `c-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 10)}`;
}

export function utf8Length(s: string): number {
  return new TextEncoder().encode(s).length;
}
