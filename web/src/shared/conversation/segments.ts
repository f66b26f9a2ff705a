// Pure logic of the messages with one peer across conversations. A resolved conversation stays on
// the customer's screen; its next message starts a new one whose seqs start at 1 again, so
// everything that works by seq (ordering, holes, read positions) works per conversation: one segment
// each, oldest first. The console keeps one segment per customer.
import { confirmed, countUnread, fromServer, mergeMessages, type ChatMessage } from "../messages";
import type { HistoryAck, Id, PrivateMessageAck } from "../protocol";
import { contiguousSeq, floorOfPage, hasHole } from "./seqs";

export interface Segment {
  /** null: the conversation my first message after a resolve is starting (not stored yet). */
  conversationId: Id | null;
  messages: ChatMessage[];
  /** Seqs up to here are not expected to be held: older pages not loaded (0: from the first message). */
  floor: number;
  /** Older messages of this conversation exist on the server. */
  hasMoreBefore: boolean;
  resolved: boolean;
  /** The peer read my messages up to this seq. */
  peerReadSeq: number;
  /** I read the peer's messages up to this seq. */
  myReadSeq: number;
}

export function emptySegment(conversationId: Id | null, over: Partial<Segment> = {}): Segment {
  return { conversationId, messages: [], floor: 0, hasMoreBefore: false, resolved: false, peerReadSeq: 0, myReadSeq: 0, ...over };
}

/** A page read backwards (the latest, or an older conversation's) as a segment of its own. */
export function segmentOfPage(page: HistoryAck, over: Partial<Segment> = {}): Segment {
  return emptySegment(page.conversationId, {
    messages: mergeMessages([], page.messages.map(fromServer)),
    floor: floorOfPage(page.messages, page.hasMore),
    hasMoreBefore: page.hasMore,
    peerReadSeq: page.peerReadSeq,
    ...over,
  });
}

/** The conversation the user is writing in now: the newest. */
export function current(segments: readonly Segment[]): Segment | undefined {
  return segments[segments.length - 1];
}

export function segmentOf(segments: readonly Segment[], conversationId: Id | null): Segment | undefined {
  return segments.find((s) => s.conversationId === conversationId);
}

function replaceAt(segments: readonly Segment[], i: number, s: Segment): Segment[] {
  const out = segments.slice();
  out[i] = s;
  return out;
}

/**
 * Stored messages of one conversation (a history page, a live message). An unknown conversation is
 * a newer one, from its first seq: it takes over the segment my first message is starting, or comes
 * last.
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

/**
 * A page read backwards of some conversation: merged into it when shown, else a newer conversation
 * of its own (started elsewhere), which starts where the page does.
 */
export function addPage(segments: readonly Segment[], page: HistoryAck): Segment[] {
  const id = page.conversationId;
  if (!id) return segments.slice();
  const i = segments.findIndex((s) => s.conversationId === id);
  if (i < 0) return [...segments, segmentOfPage(page)];
  const s = segments[i]!;
  return replaceAt(segments, i, {
    ...s,
    messages: mergeMessages(s.messages, page.messages.map(fromServer)),
    peerReadSeq: Math.max(s.peerReadSeq, page.peerReadSeq),
  });
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

export function updateSegment(segments: readonly Segment[], conversationId: Id | null, patch: Partial<Segment>): Segment[] {
  const i = segments.findIndex((s) => s.conversationId === conversationId);
  return i < 0 ? segments.slice() : replaceAt(segments, i, { ...segments[i]!, ...patch });
}

/** Everything shown, oldest conversation first. */
export function allMessages(segments: readonly Segment[]): ChatMessage[] {
  return segments.length === 1 ? segments[0]!.messages : segments.flatMap((s) => s.messages);
}

/** How far a conversation is held without a hole: `history {afterSeq}` after a reconnect. */
export function contiguousOf(segment: Segment): number {
  return contiguousSeq(segment.messages, segment.floor);
}

/** Whether a conversation holds something beyond a hole, which a fetch must fill. */
export function holeIn(segment: Segment): boolean {
  return hasHole(segment.messages, segment.floor);
}

/** Unread messages from the peer: only the current conversation can have any. */
export function unreadCount(segments: readonly Segment[], me: Id): number {
  const s = current(segments);
  return s && !s.resolved ? countUnread(s.messages, me, s.myReadSeq) : 0;
}

/** How far the peer read, per conversation: what a message's "read" mark compares with. */
export function peerReadSeqs(segments: readonly Segment[]): Record<Id, number> {
  const out: Record<Id, number> = {};
  for (const s of segments) if (s.conversationId) out[s.conversationId] = s.peerReadSeq;
  return out;
}

/** An older conversation, loaded when the customer scrolls above the oldest one shown. */
export function addOlder(segments: readonly Segment[], older: Segment): Segment[] {
  if (older.conversationId !== null && segments.some((s) => s.conversationId === older.conversationId)) return segments.slice();
  return [older, ...segments];
}

/**
 * The first page of the newest conversation, on load: it goes first (a message of mine not stored
 * yet stays after it), and what is shown of it already, the ack of my first message or a live reply
 * that arrived while the page was on its way, is merged in: it can be newer than the page. The page
 * says where the list starts.
 */
export function withLatestPage(segments: readonly Segment[], page: Segment): Segment[] {
  const shown = segments.find((s) => s.conversationId === page.conversationId);
  const merged = shown
    ? { ...page, messages: mergeMessages(shown.messages, page.messages), peerReadSeq: Math.max(shown.peerReadSeq, page.peerReadSeq) }
    : page;
  // An empty segment carries nothing: the console's, made before the page said which conversation.
  return [merged, ...segments.filter((s) => s.conversationId !== page.conversationId && s.messages.length > 0)];
}

/** Older messages of a conversation shown already (scrolling up within it). */
export function addBefore(segments: readonly Segment[], conversationId: Id | null, page: HistoryAck): Segment[] {
  const i = segments.findIndex((s) => s.conversationId === conversationId);
  if (i < 0) return segments.slice();
  const s = segments[i]!;
  return replaceAt(segments, i, {
    ...s,
    messages: mergeMessages(s.messages, page.messages.map(fromServer)),
    hasMoreBefore: page.hasMore,
    floor: Math.min(s.floor, floorOfPage(page.messages, page.hasMore)),
    peerReadSeq: Math.max(s.peerReadSeq, page.peerReadSeq),
  });
}
