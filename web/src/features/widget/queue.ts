// Pure logic of the customer's place in the queue: what the login ack, `queue_status` and live
// `queue_position` say, and how it reads ("You are number 2 in line — about 4 min").
import type { Id } from "../../shared/protocol";

export interface QueueState {
  conversationId: Id | null;
  /** 1 for the head; null when the server has not said. */
  position: number | null;
  estimatedWaitSeconds: number | null;
}

/** Whole minutes, rounded up, at least one: "about 0 min" helps nobody. */
export function waitMinutes(seconds: number): number {
  return Math.max(1, Math.ceil(seconds / 60));
}

export type QueueLine =
  | { key: "widget.queuePositionWait"; params: { n: number; m: number } }
  | { key: "widget.queuePosition"; params: { n: number } }
  | { key: "widget.queued"; params: Record<string, never> };

/** What the banner says while queued: the place and the wait when known. */
export function queueLine(q: Pick<QueueState, "position" | "estimatedWaitSeconds"> | null): QueueLine {
  const n = q?.position;
  if (typeof n !== "number" || !Number.isFinite(n) || n < 1) return { key: "widget.queued", params: {} };
  const s = q?.estimatedWaitSeconds;
  if (typeof s === "number" && Number.isFinite(s) && s >= 0) {
    return { key: "widget.queuePositionWait", params: { n, m: waitMinutes(s) } };
  }
  return { key: "widget.queuePosition", params: { n } };
}

/**
 * A `queue_position` for this customer's conversation. One for another conversation (an older one,
 * a stale event) does not move the place of the current one.
 */
export function applyQueuePosition(
  current: QueueState | null,
  e: { conversationId: Id; position: number; estimatedWaitSeconds: number },
): QueueState {
  if (current?.conversationId && current.conversationId !== e.conversationId && current.position !== null) {
    return current;
  }
  return { conversationId: e.conversationId, position: e.position, estimatedWaitSeconds: e.estimatedWaitSeconds };
}
