// Pure seq arithmetic of one conversation: how far a client holds every message without a hole.
//
// Seqs are contiguous per conversation, so a client can tell exactly what it is missing. What it asks
// for after a reconnect, and how far it may mark read, is the *contiguous point*: the highest seq up
// to which it holds every message. The highest seq it holds says nothing: its own ack, a live
// message or a page can land beyond a hole (e.g. its message sent while the server restarted, acked
// before the catch-up), and a catch-up from there would never fetch what is in the hole.
import type { ChatMessage } from "../messages";

/**
 * The contiguous point of a list ordered by seq (as {@link mergeMessages} keeps it): the highest seq
 * `s` such that every seq from `floor + 1` to `s` is held. `floor` is where the list starts: 0 when
 * the conversation's first message is (or would be) in it, else the seq below the oldest page loaded.
 */
export function contiguousSeq(list: readonly ChatMessage[], floor: number): number {
  let point = floor;
  for (const m of list) {
    if (m.seq === null || m.seq <= point) continue;
    if (m.seq !== point + 1) break;
    point = m.seq;
  }
  return point;
}

/** Whether something beyond the contiguous point is held: a hole to fill (`history {afterSeq}`). */
export function hasHole(list: readonly ChatMessage[], floor: number): boolean {
  const point = contiguousSeq(list, floor);
  return list.some((m) => m.seq !== null && m.seq > point);
}

/**
 * The message a `read {upToId}` may name: the newest one from someone other than `me` at or below the
 * contiguous point. The server marks everything up to it read, so it must not reach past a hole.
 */
export function readTarget(list: readonly ChatMessage[], me: string, floor: number): ChatMessage | undefined {
  const point = contiguousSeq(list, floor);
  for (let i = list.length - 1; i >= 0; i--) {
    const m = list[i]!;
    if (m.senderId !== me && m.seq !== null && m.seq <= point && m.id !== null) return m;
  }
  return undefined;
}

/**
 * Where a page read backwards (the latest page, or one before a message) starts: 0 when the server
 * has nothing older, else the seq just below its oldest message.
 */
export function floorOfPage(page: readonly { seq: number }[], hasMore: boolean): number {
  const oldest = page[0];
  return hasMore && oldest ? oldest.seq - 1 : 0;
}
