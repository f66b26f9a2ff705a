// Pure layout of what a conversation shows: messages (by seq), private notes interleaved by time,
// system messages as info lines, markers such as "the conversation ended", day separators and runs of
// messages from one sender.
import type { ChatMessage } from "./messages";
import type { Id, Note, Timestamp } from "./protocol";

export type TimelineEntry = { type: "message"; message: ChatMessage } | { type: "note"; note: Note };

/**
 * Notes among the messages, by time: each note goes just before the first message written after it
 * (a message and a note of the same instant: the message first). Messages keep their order (by seq,
 * then the ones not stored yet). While older messages are not loaded (`complete` false), notes older
 * than the first loaded message are left out: their place is in the part not shown yet.
 */
export function interleaveNotes(
  messages: readonly ChatMessage[],
  notes: readonly Note[],
  complete = true,
): TimelineEntry[] {
  const sorted = notes
    .slice()
    .sort((a, b) => Date.parse(a.timestamp) - Date.parse(b.timestamp) || Number(a.id) - Number(b.id));
  const first = messages[0];
  const visible =
    complete || !first ? sorted : sorted.filter((n) => Date.parse(n.timestamp) >= Date.parse(first.timestamp));
  const out: TimelineEntry[] = [];
  let i = 0;
  for (const m of messages) {
    const t = Date.parse(m.timestamp);
    while (i < visible.length && Date.parse(visible[i]!.timestamp) < t) out.push({ type: "note", note: visible[i++]! });
    out.push({ type: "message", message: m });
  }
  while (i < visible.length) out.push({ type: "note", note: visible[i++]! });
  return out;
}

/**
 * A line among the messages, after the message with key `afterKey` (null: before the first one).
 * `at`, when known, is when it happened: it then goes under the divider of its day.
 */
export interface Marker {
  key: string;
  afterKey: string | null;
  text: string;
  tone: "info" | "ended";
  at?: Timestamp;
}

export type TimelineRow =
  | { type: "day"; key: string; label: string }
  | {
      type: "message";
      key: string;
      message: ChatMessage;
      mine: boolean;
      /** First of a run of messages from one sender: show the avatar and name. */
      startsGroup: boolean;
    }
  | { type: "system"; key: string; message: ChatMessage }
  | { type: "note"; key: string; note: Note }
  | { type: "marker"; key: string; text: string; tone: Marker["tone"] };

const GROUP_GAP_MS = 5 * 60 * 1000;
const END = "\u0000end";

function timestampOf(e: TimelineEntry): Timestamp {
  return e.type === "message" ? e.message.timestamp : e.note.timestamp;
}

/**
 * When a marker between `before` and `after` (the timestamps of its neighbours, if any) happened, as
 * far as its day goes: its own time kept between its neighbours' (it cannot be earlier than what it
 * follows, nor later than what follows it), else the time of what it follows, else of what follows it.
 */
export function markerTime(marker: Marker, before: Timestamp | null, after: Timestamp | null): Timestamp | null {
  if (!marker.at) return before ?? after;
  const t = Date.parse(marker.at);
  if (before !== null && t < Date.parse(before)) return before;
  if (after !== null && t > Date.parse(after)) return after;
  return marker.at;
}

/**
 * Display rows: a day separator when the day changes (local time), a new sender run when the sender
 * changes, after a pause of 5 minutes, or after anything that is not a message (a note, an info
 * line, a marker). A marker whose message is not in the list goes at the end. A marker goes under the
 * divider of its day (see `markerTime`), never above the one of the messages it belongs with.
 */
export function layoutTimeline(
  entries: readonly TimelineEntry[],
  me: Id,
  dayOf: (ts: Timestamp) => string = (ts) => new Date(ts).toDateString(),
  markers: readonly Marker[] = [],
): TimelineRow[] {
  const keys = new Set(entries.filter((e) => e.type === "message").map((e) => (e as { message: ChatMessage }).message.key));
  const after = new Map<string | null, Marker[]>();
  for (const mk of markers) {
    const at = mk.afterKey === null ? null : keys.has(mk.afterKey) ? mk.afterKey : END;
    after.set(at, [...(after.get(at) ?? []), mk]);
  }
  const rows: TimelineRow[] = [];
  let prevDay: string | null = null;
  /** The previous row's message when it was an ordinary message: runs continue only after one. */
  let prevMessage: ChatMessage | null = null;

  const dayRow = (ts: Timestamp) => {
    const day = dayOf(ts);
    if (day === prevDay) return;
    rows.push({ type: "day", key: `day:${day}:${rows.length}`, label: day });
    prevDay = day;
    prevMessage = null;
  };
  /** The markers at `at`, between the entries at `i - 1` and `i`. */
  const pushMarkers = (at: string | null, i: number) => {
    const list = after.get(at);
    if (!list) return;
    const before = i > 0 ? timestampOf(entries[i - 1]!) : null;
    const next = i < entries.length ? timestampOf(entries[i]!) : null;
    for (const mk of list) {
      const ts = markerTime(mk, before, next);
      if (ts !== null) dayRow(ts);
      rows.push({ type: "marker", key: `mk:${mk.key}`, text: mk.text, tone: mk.tone });
    }
    prevMessage = null;
  };

  pushMarkers(null, 0);
  entries.forEach((e, i) => {
    const ts = timestampOf(e);
    dayRow(ts);
    if (e.type === "note") {
      rows.push({ type: "note", key: `n:${e.note.id}`, note: e.note });
      prevMessage = null;
      return;
    }
    const m = e.message;
    if (m.kind === "system") {
      rows.push({ type: "system", key: m.key, message: m });
      prevMessage = null;
    } else {
      const gap = prevMessage ? Date.parse(ts) - Date.parse(prevMessage.timestamp) : Infinity;
      rows.push({
        type: "message",
        key: m.key,
        message: m,
        mine: m.senderId === me,
        startsGroup: !prevMessage || prevMessage.senderId !== m.senderId || gap > GROUP_GAP_MS,
      });
      prevMessage = m;
    }
    pushMarkers(m.key, i + 1);
  });
  pushMarkers(END, entries.length);
  return rows;
}
