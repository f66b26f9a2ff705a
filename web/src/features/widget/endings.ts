// Pure logic of where the customer's conversations end and start on screen: the line after each
// resolved one, the one whose rating to ask for, and where a line about a new one goes.
import type { Segment } from "../../shared/conversation/segments";
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
