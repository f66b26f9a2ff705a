// Pure logic of the customer's messages across conversations. A resolved conversation stays on
// screen; the customer's next message starts a new one whose seqs start at 1 again, so everything
// that works by seq (ordering, gaps, read positions) works per conversation: one segment each,
// oldest first.
import type { ChatMessage } from "../../shared/messages";
import { countUnread, lastSeq, mergeMessages, seqGap } from "../../shared/messages";
import type { Id, PrivateMessageAck } from "../../shared/protocol";
import { confirmed } from "../../shared/messages";

export interface Segment {
  /** null: the conversation my first message after a resolve is starting (not stored yet). */
  conversationId: Id | null;
  messages: ChatMessage[];
  /** Older messages of this conversation exist on the server. */
  hasMoreBefore: boolean;
  resolved: boolean;
  /** My score, once rated (1..5). */
  rating: number | null;
  /** The agent read my messages up to this seq. */
  peerReadSeq: number;
  /** I read the agent's messages up to this seq. */
  myReadSeq: number;
}

export function emptySegment(conversationId: Id | null, over: Partial<Segment> = {}): Segment {
  return { conversationId, messages: [], hasMoreBefore: false, resolved: false, rating: null, peerReadSeq: 0, myReadSeq: 0, ...over };
}

/** The conversation the customer is writing in now: the newest. */
export function current(segments: readonly Segment[]): Segment | undefined {
  return segments[segments.length - 1];
}

function replaceAt(segments: readonly Segment[], i: number, s: Segment): Segment[] {
  const out = segments.slice();
  out[i] = s;
  return out;
}

/**
 * Stored messages of one conversation (a history page, a live message). An unknown conversation is
 * a newer one: it takes over the segment my first message is starting, or comes last.
 */
export function addStored(segments: readonly Segment[], conversationId: Id, incoming: readonly ChatMessage[]): Segment[] {
  const i = segments.findIndex((s) => s.conversationId === conversationId);
  if (i >= 0) return replaceAt(segments, i, { ...segments[i]!, messages: mergeMessages(segments[i]!.messages, incoming) });
  const last = current(segments);
  if (last && last.conversationId === null) {
    return replaceAt(segments, segments.length - 1, { ...last, conversationId, messages: mergeMessages(last.messages, incoming) });
  }
  return [...segments, emptySegment(conversationId, { messages: mergeMessages([], incoming) })];
}

/** A message I just wrote: in the open conversation, or the start of a new one after a resolve. */
export function addLocal(segments: readonly Segment[], local: ChatMessage): Segment[] {
  const last = current(segments);
  if (!last || last.resolved) return [...segments, emptySegment(null, { messages: [local] })];
  return replaceAt(segments, segments.length - 1, { ...last, messages: mergeMessages(last.messages, [local]) });
}

/** Replaces one of my messages (its delivery changed) wherever it is. */
export function updateLocal(segments: readonly Segment[], key: string, fn: (list: ChatMessage[]) => ChatMessage[]): Segment[] {
  const i = segments.findIndex((s) => s.messages.some((m) => m.key === key));
  return i < 0 ? segments.slice() : replaceAt(segments, i, { ...segments[i]!, messages: fn(segments[i]!.messages) });
}

/**
 * The server stored my message: it moves to the conversation the ack names (the new one it
 * started, or, if the server kept the old one going, that one).
 */
export function confirmLocal(segments: readonly Segment[], local: ChatMessage, ack: PrivateMessageAck): Segment[] {
  const stored = confirmed(local, ack);
  const from = segments.findIndex((s) => s.messages.some((m) => m.key === local.key));
  const target = segments.findIndex((s) => s.conversationId === ack.conversationId);
  if (from >= 0 && (target < 0 || target === from)) {
    const s = segments[from]!;
    return replaceAt(segments, from, { ...s, conversationId: ack.conversationId, messages: mergeMessages(s.messages, [stored]) });
  }
  let out = segments.slice();
  if (from >= 0) {
    const s = out[from]!;
    const rest = s.messages.filter((m) => m.key !== local.key);
    out = rest.length === 0 && s.conversationId === null ? out.filter((_, j) => j !== from) : replaceAt(out, from, { ...s, messages: rest });
  }
  return addStored(out, ack.conversationId, [stored]);
}

export function updateSegment(segments: readonly Segment[], conversationId: Id, patch: Partial<Segment>): Segment[] {
  const i = segments.findIndex((s) => s.conversationId === conversationId);
  return i < 0 ? segments.slice() : replaceAt(segments, i, { ...segments[i]!, ...patch });
}

/** Everything shown, oldest conversation first. */
export function allMessages(segments: readonly Segment[]): ChatMessage[] {
  return segments.flatMap((s) => s.messages);
}

/**
 * Gap detection for a live message, in its own conversation: the seq to fetch after, or null.
 * A conversation not shown yet is new: it starts at seq 1.
 */
export function gapFor(segments: readonly Segment[], m: { seq: number; conversationId: Id }): number | null {
  const s = segments.find((x) => x.conversationId === m.conversationId);
  if (!s) {
    const last = current(segments);
    // My first message of it is on its way: its list has no stored message yet.
    return seqGap(last && last.conversationId === null ? last.messages : [], m);
  }
  return seqGap(s.messages, m);
}

/** The highest seq of a conversation: `history {afterSeq}` after a reconnect. */
export function lastSeqOf(segments: readonly Segment[], conversationId: Id): number {
  return lastSeq(segments.find((s) => s.conversationId === conversationId)?.messages ?? []);
}

/** Unread messages from the agent: only the current conversation can have any. */
export function unreadCount(segments: readonly Segment[], me: Id): number {
  const s = current(segments);
  return s && !s.resolved ? countUnread(s.messages, me, s.myReadSeq) : 0;
}

/** How far the agent read, per conversation: what a message's "read" mark compares with. */
export function peerReadSeqs(segments: readonly Segment[]): Record<Id, number> {
  const out: Record<Id, number> = {};
  for (const s of segments) if (s.conversationId) out[s.conversationId] = s.peerReadSeq;
  return out;
}

/** Where "This conversation has ended" goes: after the last message of each resolved conversation. */
export function endedAfter(segments: readonly Segment[]): Array<{ conversationId: Id; afterKey: string | null }> {
  return segments
    .filter((s) => s.resolved && s.conversationId !== null)
    .map((s) => ({ conversationId: s.conversationId!, afterKey: s.messages[s.messages.length - 1]?.key ?? null }));
}

/** An older conversation, loaded when the customer scrolls above the oldest one shown. */
export function addOlder(segments: readonly Segment[], older: Segment): Segment[] {
  if (older.conversationId !== null && segments.some((s) => s.conversationId === older.conversationId)) return segments.slice();
  return [older, ...segments];
}

/**
 * The first page of the newest conversation, on load: it goes first (a message of mine not stored
 * yet stays after it), and what is shown of it already, the ack of my first message or a live reply
 * that arrived while the page was on its way, is merged in: it can be newer than the page.
 */
export function withLatestPage(segments: readonly Segment[], page: Segment): Segment[] {
  const shown = segments.find((s) => s.conversationId === page.conversationId);
  const merged = shown
    ? { ...page, messages: mergeMessages(shown.messages, page.messages), peerReadSeq: Math.max(shown.peerReadSeq, page.peerReadSeq) }
    : page;
  return [merged, ...segments.filter((s) => s.conversationId !== page.conversationId)];
}

/** Older messages of a conversation shown already (scrolling up within it). */
export function addBefore(segments: readonly Segment[], conversationId: Id, page: readonly ChatMessage[], hasMoreBefore: boolean): Segment[] {
  const i = segments.findIndex((s) => s.conversationId === conversationId);
  if (i < 0) return segments.slice();
  const s = segments[i]!;
  return replaceAt(segments, i, { ...s, messages: mergeMessages(s.messages, page), hasMoreBefore });
}

/**
 * The conversation whose end (and rating) to show at the bottom: the newest resolved one, unless a
 * newer conversation has messages already. (A reconnect after a resolve may open a new, still empty
 * conversation: the customer has not moved on yet.)
 */
export function endedSegment(segments: readonly Segment[]): Segment | null {
  for (let i = segments.length - 1; i >= 0; i--) {
    const s = segments[i]!;
    if (s.resolved && s.conversationId) return s;
    if (s.messages.length > 0) return null;
  }
  return null;
}

/**
 * The last message shown before conversation `conversationId` (in the conversations before it):
 * where a line about its start goes when it has no message of its own yet. null: none.
 */
export function lastKeyBefore(segments: readonly Segment[], conversationId: Id | null): string | null {
  const i = segments.findIndex((s) => s.conversationId === conversationId);
  const end = i < 0 ? segments.length : i;
  for (let j = end - 1; j >= 0; j--) {
    const m = segments[j]!.messages;
    if (m.length > 0) return m[m.length - 1]!.key;
  }
  return null;
}
