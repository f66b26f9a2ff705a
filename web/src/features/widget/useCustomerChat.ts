// The customer's side of one conversation: session, messages, agent, unread, typing.
import { computed, ref, shallowRef, watch } from "vue";
import { api } from "../../shared/api";
import { createKeyedCoalescer } from "../../shared/coalesce";
import {
  confirmed,
  countUnread,
  fromServer,
  latestFromPeer,
  lastSeq,
  localMessage,
  mergeMessages,
  oldestStored,
  readSeqFromUnread,
  seqGap,
  setDelivery,
  type ChatMessage,
} from "../../shared/messages";
import type { Id, Member, SessionResponse, User } from "../../shared/protocol";
import { clearSession, loadSession, saveSession } from "../../shared/session";
import { createTypingSender, TYPING_STALE_MS } from "../../shared/typing";
import { ChatError, useChatSocket, type ChatSocket } from "../../shared/useChatSocket";
import { newClientMsgId } from "../../shared/format";

export type Phase = "idle" | "starting" | "ready" | "error" | "expired";

export interface AgentInfo {
  id: Id;
  displayName: string;
  online: boolean;
}

const PAGE = 50;

export function useCustomerChat() {
  const phase = ref<Phase>("idle");
  const me = ref<User | null>(null);
  const messages = shallowRef<ChatMessage[]>([]);
  const agent = ref<AgentInfo | null>(null);
  const queued = ref(false);
  const peerReadSeq = ref(0);
  const myReadSeq = ref(0);
  const agentTyping = ref(false);
  /** "… joined the conversation", shown after the message that was last when it happened. */
  const assigned = ref<{ name: string; afterKey: string | null } | null>(null);
  const hasMoreBefore = ref(false);
  const loadingOlder = ref(false);
  const loaded = ref(false);
  /** Whether the customer can see the chat now (tab visible and, embedded, the panel open). */
  const visible = ref(true);
  const failures = ref<Record<string, string>>({});
  const chat = shallowRef<ChatSocket | null>(null);

  const connection = computed(() => chat.value?.state.value ?? "connecting");
  const myId = () => me.value?.id ?? "";
  const unread = computed(() => (loaded.value ? countUnread(messages.value, myId(), myReadSeq.value) : 0));

  let typingTimer: ReturnType<typeof setTimeout> | undefined;
  const typingSender = createTypingSender({
    send: (t) => {
      if (agent.value) chat.value?.setTyping(t);
    },
  });

  function merge(incoming: ChatMessage[]) {
    messages.value = mergeMessages(messages.value, incoming);
  }

  function applyMembers(list: Member[]) {
    const a = list[0];
    if (!a) {
      agent.value = null;
      return;
    }
    agent.value = { id: a.id, displayName: a.displayName, online: a.online };
    queued.value = false;
  }

  let reading = false;
  async function markReadIfVisible() {
    const c = chat.value;
    if (!c || !visible.value || reading || !loaded.value) return;
    const latest = latestFromPeer(messages.value, myId());
    if (!latest || latest.seq === null || latest.id === null || latest.seq <= myReadSeq.value) return;
    reading = true;
    try {
      const ack = await c.markRead(latest.senderId, latest.id);
      myReadSeq.value = Math.max(myReadSeq.value, ack.seq);
    } catch {
      // Tried again on the next message or visibility change.
    } finally {
      reading = false;
    }
  }

  async function onReady(login: { queued: boolean; csId: Id | null }, resumed: boolean) {
    if (!chat.value) return;
    queued.value = login.queued;
    phase.value = "ready";
    await catchUp(resumed);
  }

  /** After a login (`resumed` on a reconnect) or the server's `resync`: the agent, the messages. */
  async function catchUp(resumed: boolean) {
    const c = chat.value;
    if (!c) return;
    const members = await c.allMembers().catch(() => null);
    if (members) applyMembers(members);
    if (!resumed || !loaded.value) {
      const page = await c.history({ limit: PAGE });
      merge(page.messages.map(fromServer));
      hasMoreBefore.value = page.hasMore;
      peerReadSeq.value = Math.max(peerReadSeq.value, page.peerReadSeq);
      myReadSeq.value = readSeqFromUnread(messages.value, myId(), members?.[0]?.message_count ?? 0);
      loaded.value = true;
    } else {
      const missed = await c.historyAfter(lastSeq(messages.value));
      merge(missed.messages.map(fromServer));
      peerReadSeq.value = Math.max(peerReadSeq.value, missed.peerReadSeq);
    }
    void markReadIfVisible();
  }

  // A live message beyond the next seq: fetch what is missing before it, one fetch at a time (from
  // the lowest gap asked for meanwhile).
  const gaps = createKeyedCoalescer<Id, number>(
    async (_conversationId, afterSeq) => {
      const c = chat.value;
      if (!c || !loaded.value) return;
      const missed = await c.historyAfter(afterSeq);
      merge(missed.messages.map(fromServer));
      peerReadSeq.value = Math.max(peerReadSeq.value, missed.peerReadSeq);
      void markReadIfVisible();
    },
    { merge: Math.min },
  );

  function connect(s: SessionResponse) {
    me.value = s.user;
    const c = useChatSocket({
      token: s.token,
      userId: s.user.id,
      handlers: {
        ready: (login, resumed) => onReady(login, resumed).catch(() => undefined),
        resync: () => catchUp(true).catch(() => undefined),
        message(m) {
          const gap = loaded.value ? seqGap(messages.value, m) : null;
          merge([fromServer(m)]);
          if (gap !== null) void gaps.request(m.conversationId, gap);
          if (m.senderId !== myId()) {
            agentTyping.value = false;
            if (!agent.value || agent.value.id !== m.senderId) void c.allMembers().then(applyMembers, () => undefined);
            void markReadIfVisible();
          }
        },
        messagesRead(e) {
          if (e.readerId === myId()) myReadSeq.value = Math.max(myReadSeq.value, e.seq);
          else peerReadSeq.value = Math.max(peerReadSeq.value, e.seq);
        },
        typing(e) {
          if (agent.value && e.userId !== agent.value.id) return;
          agentTyping.value = e.typing;
          clearTimeout(typingTimer);
          if (e.typing) typingTimer = setTimeout(() => (agentTyping.value = false), TYPING_STALE_MS);
        },
        members: applyMembers,
        onlineUsers(ids) {
          if (agent.value) agent.value = { ...agent.value, online: ids.includes(agent.value.id) };
        },
        presence(userId, online) {
          if (agent.value?.id === userId) agent.value = { ...agent.value, online };
        },
        assigned(e) {
          queued.value = false;
          agent.value = { id: e.agent.id, displayName: e.agent.displayName, online: true };
          const last = messages.value[messages.value.length - 1];
          assigned.value = { name: e.agent.displayName, afterKey: last?.key ?? null };
        },
        unauthorized() {
          clearSession("visitor");
          phase.value = "expired";
        },
      },
    });
    chat.value = c;
    c.start();
  }

  /** Resumes a stored session; creates a visitor only when `create` (the customer opened the chat). */
  async function start(create: boolean) {
    if (chat.value || phase.value === "starting") return;
    const stored = loadSession("visitor");
    if (stored && stored.user.role === "customer") {
      connect(stored);
      return;
    }
    if (!create) return;
    phase.value = "starting";
    try {
      const s = await api.createVisitor({});
      saveSession("visitor", s);
      connect(s);
    } catch {
      phase.value = "error";
    }
  }

  async function deliver(local: ChatMessage) {
    const c = chat.value;
    if (!c || !local.clientMsgId) return;
    try {
      const ack = await c.sendMessage({ content: local.content, clientMsgId: local.clientMsgId });
      merge([confirmed(local, ack)]);
    } catch (e) {
      failures.value = { ...failures.value, [local.key]: e instanceof ChatError ? e.code : "internal" };
      messages.value = setDelivery(messages.value, local.key, "failed");
    }
  }

  function send(content: string) {
    if (!me.value || !content.trim()) return;
    typingSender.stop();
    const local = localMessage({
      senderId: me.value.id,
      receiverId: agent.value?.id ?? null,
      content,
      clientMsgId: newClientMsgId(),
      now: new Date(),
    });
    merge([local]);
    void deliver(local);
  }

  /** Sends a failed message again with the same clientMsgId, so the server stores it once. */
  function retry(key: string) {
    const m = messages.value.find((x) => x.key === key && x.delivery === "failed");
    if (!m) return;
    const rest = { ...failures.value };
    delete rest[key];
    failures.value = rest;
    messages.value = setDelivery(messages.value, key, "sending");
    void deliver({ ...m, delivery: "sending" });
  }

  async function loadOlder() {
    const c = chat.value;
    const oldest = oldestStored(messages.value);
    if (!c || !oldest?.id || !hasMoreBefore.value || loadingOlder.value) return;
    loadingOlder.value = true;
    try {
      const page = await c.history({ beforeId: oldest.id, limit: PAGE });
      merge(page.messages.map(fromServer));
      hasMoreBefore.value = page.hasMore;
      peerReadSeq.value = Math.max(peerReadSeq.value, page.peerReadSeq);
    } catch {
      // The user can scroll up again.
    } finally {
      loadingOlder.value = false;
    }
  }

  /** After an expired session: a new visitor and a new conversation. */
  async function restart() {
    gaps.cancel();
    chat.value?.close();
    chat.value = null;
    messages.value = [];
    loaded.value = false;
    agent.value = null;
    myReadSeq.value = 0;
    peerReadSeq.value = 0;
    phase.value = "idle";
    await start(true);
  }

  watch(visible, () => void markReadIfVisible());

  return {
    phase,
    me,
    messages,
    agent,
    queued,
    peerReadSeq,
    agentTyping,
    assigned,
    hasMoreBefore,
    loadingOlder,
    loaded,
    visible,
    failures,
    connection,
    unread,
    start,
    send,
    retry,
    loadOlder,
    restart,
    typingInput: () => typingSender.input(),
    typingStop: () => typingSender.stop(),
    close: () => {
      gaps.cancel();
      chat.value?.close();
    },
  };
}
