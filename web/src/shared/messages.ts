// Pure message-list logic: merging history pages, live messages and local (not yet acknowledged)
// messages into one list ordered by seq, without duplicates (holes are found in conversation/seqs.ts).
import type { Attachment, Id, Message, MessageKind, PrivateMessageAck } from "./protocol";

export type Delivery = "sending" | "sent" | "failed";
/** What a sender sees under its own message. */
export type MessageStatus = Delivery | "read";

export interface ChatMessage {
  /** Stable across "sending" -> "sent", so the list does not re-render the bubble. */
  key: string;
  /** null until the server has stored the message. */
  id: Id | null;
  seq: number | null;
  conversationId: Id | null;
  senderId: Id;
  receiverId: Id | null;
  kind: MessageKind;
  content: string;
  /** For `image` and `file` messages. */
  attachment: Attachment | null;
  timestamp: string;
  clientMsgId: string | null;
  delivery: Delivery;
}

export function messageKey(senderId: Id, id: Id | null, clientMsgId: string | null): string {
  return clientMsgId ? `c:${senderId}:${clientMsgId}` : `m:${id ?? ""}`;
}

export function fromServer(m: Message): ChatMessage {
  return {
    key: messageKey(m.senderId, m.id, m.clientMsgId),
    id: m.id,
    seq: m.seq,
    conversationId: m.conversationId,
    senderId: m.senderId,
    receiverId: m.receiverId,
    kind: m.kind ?? "text",
    content: m.content,
    attachment: m.attachment ?? null,
    timestamp: m.timestamp,
    clientMsgId: m.clientMsgId,
    delivery: "sent",
  };
}

/** A message the user just wrote: shown at once, "sending" until the ack. */
export function localMessage(args: {
  senderId: Id;
  receiverId: Id | null;
  content: string;
  clientMsgId: string;
  now: Date;
  /** An uploaded file this message sends. */
  attachment?: Attachment;
}): ChatMessage {
  return {
    key: messageKey(args.senderId, null, args.clientMsgId),
    id: null,
    seq: null,
    conversationId: null,
    senderId: args.senderId,
    receiverId: args.receiverId,
    kind: args.attachment ? (isImageMime(args.attachment.mime) ? "image" : "file") : "text",
    content: args.content,
    attachment: args.attachment ?? null,
    timestamp: args.now.toISOString(),
    clientMsgId: args.clientMsgId,
    delivery: "sending",
  };
}

/** The stored message, as the ack of `private_message` describes it. */
export function confirmed(local: ChatMessage, ack: PrivateMessageAck): ChatMessage {
  return {
    ...local,
    id: ack.id,
    seq: ack.seq,
    conversationId: ack.conversationId,
    timestamp: ack.createdAt,
    delivery: "sent",
  };
}

/** Stored messages by seq; messages not stored yet after them, in the order they were written. */
export function compareMessages(a: ChatMessage, b: ChatMessage): number {
  if (a.seq !== null && b.seq !== null) return a.seq - b.seq;
  if (a.seq !== null) return -1;
  if (b.seq !== null) return 1;
  return 0;
}

/**
 * Merges `incoming` (a history page, a live message, an ack) into `current`.
 * A message is the same message when it has the same id, or when it is a local message with the same
 * sender and clientMsgId (the server's copy of a message this client sent). The stored copy wins,
 * and the local key is kept. Returns a new array ordered by {@link compareMessages}.
 */
export function mergeMessages(current: readonly ChatMessage[], incoming: readonly ChatMessage[]): ChatMessage[] {
  const out = current.slice();
  const byId = new Map<Id, number>();
  const byClient = new Map<string, number>();
  const index = (m: ChatMessage, i: number) => {
    if (m.id !== null) byId.set(m.id, i);
    if (m.clientMsgId) byClient.set(`${m.senderId}\u0000${m.clientMsgId}`, i);
  };
  out.forEach(index);

  for (const m of incoming) {
    const clientKey = m.clientMsgId ? `${m.senderId}\u0000${m.clientMsgId}` : null;
    const at = (m.id !== null ? byId.get(m.id) : undefined) ?? (clientKey ? byClient.get(clientKey) : undefined);
    if (at === undefined) {
      index(m, out.length);
      out.push(m);
      continue;
    }
    const old = out[at]!;
    // A local copy never replaces a stored one (e.g. a late timeout after the live echo).
    if (old.id !== null && m.id === null) continue;
    const merged = { ...m, key: old.key };
    out[at] = merged;
    index(merged, at);
  }
  // Array.prototype.sort is stable, so local messages keep their writing order.
  return out.sort(compareMessages);
}

export function setDelivery(list: readonly ChatMessage[], key: string, delivery: Delivery): ChatMessage[] {
  return list.map((m) => (m.key === key && m.id === null ? { ...m, delivery } : m));
}

/** The highest seq of the stored messages, or 0 when none are: what `history {afterSeq}` needs. */
export function lastSeq(list: readonly ChatMessage[]): number {
  let max = 0;
  for (const m of list) if (m.seq !== null && m.seq > max) max = m.seq;
  return max;
}

/** The oldest stored message: the `beforeId` when scrolling up. */
export function oldestStored(list: readonly ChatMessage[]): ChatMessage | undefined {
  return list.find((m) => m.id !== null);
}

/** Images the chat shows as thumbnails; any other attachment is a download link. */
export function isImageMime(mime: string): boolean {
  return /^image\/(png|jpeg|gif|webp)$/i.test(mime);
}

/** Messages others sent me after my read position. */
export function countUnread(list: readonly ChatMessage[], me: Id, myReadSeq: number): number {
  let n = 0;
  for (const m of list) if (m.senderId !== me && m.seq !== null && m.seq > myReadSeq) n++;
  return n;
}

/**
 * The status line under one of my messages; `null` for messages others sent. `peerReadSeq` is how far
 * the peer has read: from `history` (so it survives a reload), then from `messages_read`.
 */
export function statusOf(m: ChatMessage, me: Id, peerReadSeq: number): MessageStatus | null {
  if (m.senderId !== me || m.kind === "system") return null;
  if (m.delivery !== "sent" || m.seq === null) return m.delivery;
  return m.seq <= peerReadSeq ? "read" : "sent";
}

/**
 * My read position, derived from the server's unread count (`message_count`): the seq below the
 * `unread` newest messages from others. The protocol tells the count, not the position.
 */
export function readSeqFromUnread(list: readonly ChatMessage[], me: Id, unread: number): number {
  if (unread <= 0) return lastSeq(list);
  let seen = 0;
  for (let i = list.length - 1; i >= 0; i--) {
    const m = list[i]!;
    if (m.seq === null || m.senderId === me) continue;
    seen++;
    if (seen === unread) return m.seq - 1;
  }
  // More unread than loaded: everything loaded is unread.
  return 0;
}
