// Pure logic of where the customer's conversations end and start on screen: the line after each
// resolved one, the one whose rating to ask for, and where the line saying an agent joined goes.
import { current, segmentOf, type Segment } from "../../shared/conversation/segments";
import type { Id } from "../../shared/protocol";

/** Where "This conversation has ended" goes: after the last message of each resolved conversation. */
export function endedAfter(segments: readonly Segment[]): Array<{ conversationId: Id; afterKey: string | null }> {
  return segments
    .filter((s) => s.resolved && s.conversationId !== null)
    .map((s) => ({ conversationId: s.conversationId!, afterKey: s.messages[s.messages.length - 1]?.key ?? null }));
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

/** An agent took conversation `conversationId` when this screen held its messages up to `afterSeq`. */
export interface Joined {
  conversationId: Id;
  afterSeq: number;
}

/**
 * The message after which "… joined the conversation" goes; null: before every message.
 *
 * A conversation starts with the customer's first message (seq 1), and an agent takes it only once
 * that message is stored: at once, or when it leaves the queue. So the line goes after the last
 * message the screen held when the agent joined, and never above the first message. While that first
 * message is still on its way (its ack names the conversation), it is the first one of the
 * conversation being started.
 */
export function joinedAfter(segments: readonly Segment[], j: Joined): string | null {
  const s = segmentOf(segments, j.conversationId);
  if (s) {
    const upTo = Math.max(1, j.afterSeq);
    const at = s.messages.filter((m) => m.seq !== null && m.seq <= upTo).at(-1);
    return at ? at.key : lastKeyBefore(segments, j.conversationId);
  }
  const starting = current(segments);
  if (starting && starting.conversationId === null && starting.messages[0]) return starting.messages[0].key;
  return lastKeyBefore(segments, j.conversationId);
}

/** The highest seq this screen holds of a conversation (0: none): where an agent joining it is shown. */
export function heldUpTo(segments: readonly Segment[], conversationId: Id): number {
  const s = segmentOf(segments, conversationId);
  return (s?.messages ?? []).reduce((max, m) => Math.max(max, m.seq ?? 0), 0);
}
