// One customer's conversation in the console: the engine's messages and read positions (read through,
// so the pane and the list see them as plain fields), with the console's own notes and typing line.
import { markRaw } from "vue";
import type { ConversationEngine } from "../../shared/conversation/engine";
import type { Failure } from "../../shared/errors";
import type { ChatMessage } from "../../shared/messages";
import type { Id, Note } from "../../shared/protocol";

export interface Conversation {
  peerId: Id;
  readonly engine: ConversationEngine;
  /** Private notes, oldest first. */
  notes: Note[];
  typing: boolean;
  /** The conversation these messages belong to (a customer's next one starts at seq 1 again). */
  readonly conversationId: Id | null;
  readonly messages: ChatMessage[];
  /** The latest page has been fetched. */
  readonly loaded: boolean;
  readonly loading: boolean;
  readonly hasMoreBefore: boolean;
  readonly loadingOlder: boolean;
  /** The customer read my messages up to this seq. */
  readonly peerReadSeq: number;
  /** I read the customer's messages up to this seq. */
  readonly myReadSeq: number;
  readonly failures: Record<string, Failure>;
}

export function newConversation(peerId: Id, engine: ConversationEngine): Conversation {
  const e = markRaw(engine);
  return {
    peerId,
    engine: e,
    notes: [],
    typing: false,
    get conversationId() {
      return e.current.value?.conversationId ?? null;
    },
    get messages() {
      return e.messages.value;
    },
    get loaded() {
      return e.state.loaded;
    },
    get loading() {
      return e.state.loading;
    },
    get hasMoreBefore() {
      return e.state.segments[0]?.hasMoreBefore ?? false;
    },
    get loadingOlder() {
      return e.state.loadingOlder;
    },
    get peerReadSeq() {
      return e.current.value?.peerReadSeq ?? 0;
    },
    get myReadSeq() {
      return e.current.value?.myReadSeq ?? 0;
    },
    get failures() {
      return e.state.failures;
    },
  };
}
