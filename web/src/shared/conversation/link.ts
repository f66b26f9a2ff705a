// How a conversation engine reaches the server. The console addresses a customer (`peerId`); a
// customer addresses its own conversations (`conversationId`, its latest without one). The engine
// does not care which: it asks for pages, sends, marks read and uploads through this.
import { api } from "../api";
import type { ChatMessage } from "../messages";
import type { Attachment, HistoryAck, Id, Message, PrivateMessageAck, PrivateMessagePayload, ReadAck } from "../protocol";
import { ChatError, type ChatSocket } from "../useChatSocket";

export interface ConversationLink {
  /** The latest page. */
  latest(limit: number): Promise<HistoryAck>;
  /** The page just before message `beforeId` (scrolling up). */
  before(conversationId: Id | null, beforeId: Id, limit: number): Promise<HistoryAck>;
  /** Every message after `afterSeq`, page after page, and how far the peer has read. */
  after(conversationId: Id, afterSeq: number): Promise<{ conversationId: Id | null; messages: Message[]; peerReadSeq: number }>;
  send(local: ChatMessage): Promise<PrivateMessageAck>;
  /** `read {upToId}`: marks everything up to this message of the peer read. */
  markRead(upTo: ChatMessage): Promise<ReadAck>;
  upload(file: File): Promise<Attachment>;
}

/** The `private_message` of a message I wrote; the same `clientMsgId` on every try. */
export function messagePayload(local: ChatMessage): PrivateMessagePayload {
  const clientMsgId = local.clientMsgId ?? undefined;
  return local.attachment
    ? { attachmentId: local.attachment.id, clientMsgId, ...(local.content ? { content: local.content } : {}) }
    : { content: local.content, clientMsgId };
}

function connected(chat: () => ChatSocket | null): ChatSocket {
  const c = chat();
  if (!c) throw new ChatError("timeout", "not connected");
  return c;
}

/** The agent's side: everything goes to one customer. */
export function customerLink(chat: () => ChatSocket | null, token: string, peerId: Id): ConversationLink {
  return {
    latest: (limit) => connected(chat).history({ peerId, limit }),
    before: (_conversationId, beforeId, limit) => connected(chat).history({ peerId, beforeId, limit }),
    after: (_conversationId, afterSeq) => connected(chat).historyAfter(afterSeq, peerId),
    send: (local) => connected(chat).sendMessage({ receiverId: peerId, ...messagePayload(local) }),
    markRead: (upTo) => connected(chat).markRead(peerId, upTo.id!),
    upload: async (file) => (await api.uploadAttachment(token, file, peerId)).attachment,
  };
}

/** The customer's side: its own conversations, with whichever agent has them. */
export function ownConversationsLink(chat: () => ChatSocket | null, token: string): ConversationLink {
  return {
    latest: (limit) => connected(chat).history({ limit }),
    before: (conversationId, beforeId, limit) =>
      connected(chat).history({ ...(conversationId ? { conversationId } : {}), beforeId, limit }),
    after: (conversationId, afterSeq) => connected(chat).historyAfter(afterSeq, undefined, conversationId),
    send: (local) => connected(chat).sendMessage(messagePayload(local)),
    markRead: (upTo) => connected(chat).markRead(upTo.senderId, upTo.id!),
    upload: async (file) => (await api.uploadAttachment(token, file)).attachment,
  };
}
