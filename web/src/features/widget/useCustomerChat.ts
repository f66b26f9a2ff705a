// The customer's side: session, the conversations (the current one and the resolved ones before it,
// one segment each: seqs restart at 1 in every conversation), the agent, the queue, unread, typing,
// attachments and the rating of a resolved conversation.
import { computed, ref, shallowRef, watch } from "vue";
import { api } from "../../shared/api";
import { createKeyedCoalescer } from "../../shared/coalesce";
import { failureOf, type Failure } from "../../shared/errors";
import { newClientMsgId } from "../../shared/format";
import {
  fromServer,
  latestFromPeer,
  localMessage,
  readSeqFromUnread,
  setDelivery,
  type ChatMessage,
} from "../../shared/messages";
import type { Attachment, ConversationSummary, Id, LoginAck, Member, SessionResponse, User } from "../../shared/protocol";
import { clearSession, loadSession, saveSession } from "../../shared/session";
import { createTypingSender, TYPING_STALE_MS } from "../../shared/typing";
import { useChatSocket, type ChatSocket } from "../../shared/useChatSocket";
import { applyQueuePosition, type QueueState } from "./queue";
import {
  addBefore,
  addLocal,
  addOlder,
  addStored,
  allMessages,
  confirmLocal,
  current,
  emptySegment,
  endedSegment,
  gapFor,
  lastSeqOf,
  peerReadSeqs,
  unreadCount,
  updateLocal,
  updateSegment,
  withLatestPage,
  type Segment,
} from "./segments";

export type Phase = "idle" | "starting" | "ready" | "error" | "expired";

export interface AgentInfo {
  id: Id;
  displayName: string;
  online: boolean;
}

export type RatingState = { state: "idle" } | { state: "sending" } | { state: "done" } | { state: "failed"; failure: Failure };

const PAGE = 50;

export function useCustomerChat() {
  const phase = ref<Phase>("idle");
  const me = ref<User | null>(null);
  const token = ref("");
  const segments = shallowRef<Segment[]>([]);
  const agent = ref<AgentInfo | null>(null);
  const queued = ref(false);
  const queue = ref<QueueState | null>(null);
  const agentTyping = ref(false);
  /** "… joined the conversation", shown after the message that was last when it happened. */
  const assigned = ref<{ name: string; afterKey: string | null; conversationId: Id } | null>(null);
  const loadingOlder = ref(false);
  const loaded = ref(false);
  /** Whether the customer can see the chat now (tab visible and, embedded, the panel open). */
  const visible = ref(true);
  const failures = ref<Record<string, Failure>>({});
  /** The file being uploaded, and why the last upload failed. */
  const uploading = ref<string | null>(null);
  const uploadProblem = ref<Failure | null>(null);
  const rating = ref<RatingState>({ state: "idle" });
  /** Names of the agents seen in this chat (after a transfer, older messages are someone else's). */
  const agentNames = ref<Record<Id, string>>({});
  const chat = shallowRef<ChatSocket | null>(null);
  /** Resolved conversations older than the oldest shown, newest first (from `GET /api/conversations`). */
  let olderConversations: ConversationSummary[] = [];

  const messages = computed(() => allMessages(segments.value));
  const currentSegment = computed(() => current(segments.value));
  const readSeqs = computed(() => peerReadSeqs(segments.value));
  const hasMoreBefore = computed(() => (segments.value[0]?.hasMoreBefore ?? false) || olderCount.value > 0);
  const olderCount = ref(0);
  const connection = computed(() => chat.value?.state.value ?? "connecting");
  const myId = () => me.value?.id ?? "";
  const unread = computed(() => (loaded.value ? unreadCount(segments.value, myId()) : 0));
  /** The current conversation was resolved: show that it ended and ask for a rating. */
  const ended = computed(() => endedSegment(segments.value));

  let typingTimer: ReturnType<typeof setTimeout> | undefined;
  const typingSender = createTypingSender({
    send: (t) => {
      if (agent.value) chat.value?.setTyping(t);
    },
  });

  function rememberAgent(id: Id, name: string) {
    if (agentNames.value[id] !== name) agentNames.value = { ...agentNames.value, [id]: name };
  }

  function applyMembers(list: Member[]) {
    const a = list[0];
    if (!a) {
      agent.value = null;
      return;
    }
    agent.value = { id: a.id, displayName: a.displayName, online: a.online };
    rememberAgent(a.id, a.displayName);
    queued.value = false;
    queue.value = null;
  }

  let reading = false;
  async function markReadIfVisible() {
    const c = chat.value;
    const s = currentSegment.value;
    if (!c || !s || s.resolved || !s.conversationId || !visible.value || reading || !loaded.value) return;
    const latest = latestFromPeer(s.messages, myId());
    if (!latest || latest.seq === null || latest.id === null || latest.seq <= s.myReadSeq) return;
    const conversationId = s.conversationId;
    reading = true;
    try {
      const ack = await c.markRead(latest.senderId, latest.id);
      const seg = segments.value.find((x) => x.conversationId === conversationId);
      if (seg) segments.value = updateSegment(segments.value, conversationId, { myReadSeq: Math.max(seg.myReadSeq, ack.seq) });
    } catch {
      // Tried again on the next message or visibility change.
    } finally {
      reading = false;
    }
  }

  async function applyLogin(login: LoginAck) {
    queued.value = login.queued;
    if (!login.queued) {
      queue.value = null;
      return;
    }
    if (typeof login.position === "number") {
      queue.value = {
        conversationId: login.conversationId,
        position: login.position,
        estimatedWaitSeconds: login.estimatedWaitSeconds ?? null,
      };
    } else {
      await refreshQueue();
    }
  }

  /** Asks where the conversation stands in the queue (`queue_status`). */
  async function refreshQueue() {
    const c = chat.value;
    if (!c) return;
    try {
      const q = await c.queueStatus();
      queued.value = q.queued;
      queue.value = q.queued ? { conversationId: q.conversationId, position: q.position, estimatedWaitSeconds: q.estimatedWaitSeconds } : null;
    } catch {
      // An older server without queue_status: the general "queued" text stays.
    }
  }

  async function onReady(login: LoginAck, resumed: boolean) {
    if (!chat.value) return;
    phase.value = "ready";
    await applyLogin(login);
    await catchUp(resumed);
  }

  /** The customer's conversations, newest first; null when the server cannot say. */
  async function listConversations(): Promise<ConversationSummary[] | null> {
    try {
      return (await api.conversations(token.value)).conversations;
    } catch {
      return null;
    }
  }

  function applyStatuses(list: ConversationSummary[]) {
    let segs = segments.value;
    for (const c of list) {
      const s = segs.find((x) => x.conversationId === c.id);
      if (!s) continue;
      const resolved = c.status === "resolved";
      if (s.resolved !== resolved || s.rating !== c.rating) segs = updateSegment(segs, c.id, { resolved, rating: c.rating });
    }
    segments.value = segs;
  }

  /** After a login (`resumed` on a reconnect) or the server's `resync`: the agent, the messages. */
  async function catchUp(resumed: boolean) {
    const c = chat.value;
    if (!c) return;
    const members = await c.allMembers().catch(() => null);
    if (members) applyMembers(members);
    if (!resumed || !loaded.value) {
      const [page, list] = await Promise.all([c.history({ limit: PAGE }), listConversations()]);
      const id = page.conversationId;
      if (id) {
        const summary = list?.find((x) => x.id === id);
        const seg = emptySegment(id, {
          messages: page.messages.map(fromServer),
          hasMoreBefore: page.hasMore,
          peerReadSeq: page.peerReadSeq,
          resolved: summary?.status === "resolved",
          rating: summary?.rating ?? null,
        });
        const segs = withLatestPage(segments.value, seg);
        segs[0]!.myReadSeq = readSeqFromUnread(segs[0]!.messages, myId(), seg.resolved ? 0 : (members?.[0]?.message_count ?? 0));
        segments.value = segs;
      }
      olderConversations = (list ?? []).filter((x) => x.id !== id && !segments.value.some((s) => s.conversationId === x.id));
      olderCount.value = olderConversations.length;
      loaded.value = true;
    } else {
      const cur = currentSegment.value;
      if (cur?.conversationId) {
        const missed = await c.historyAfter(lastSeqOf(segments.value, cur.conversationId), undefined, cur.conversationId);
        segments.value = addStored(segments.value, cur.conversationId, missed.messages.map(fromServer));
        const s = segments.value.find((x) => x.conversationId === cur.conversationId)!;
        segments.value = updateSegment(segments.value, cur.conversationId, { peerReadSeq: Math.max(s.peerReadSeq, missed.peerReadSeq) });
      }
      // A conversation started meanwhile (in another tab) comes after it.
      const latest = await c.history({ limit: PAGE });
      if (
        latest.conversationId &&
        latest.messages.length > 0 &&
        !segments.value.some((s) => s.conversationId === latest.conversationId)
      ) {
        segments.value = addStored(segments.value, latest.conversationId, latest.messages.map(fromServer));
      }
      const list = await listConversations();
      if (list) applyStatuses(list);
    }
    void markReadIfVisible();
  }

  // A live message beyond the next seq of its conversation: fetch what is missing before it, one
  // fetch at a time per conversation (from the lowest gap asked for meanwhile).
  const gaps = createKeyedCoalescer<Id, number>(
    async (conversationId, afterSeq) => {
      const c = chat.value;
      if (!c || !loaded.value) return;
      const missed = await c.historyAfter(afterSeq, undefined, conversationId);
      segments.value = addStored(segments.value, conversationId, missed.messages.map(fromServer));
      const s = segments.value.find((x) => x.conversationId === conversationId);
      if (s) segments.value = updateSegment(segments.value, conversationId, { peerReadSeq: Math.max(s.peerReadSeq, missed.peerReadSeq) });
      void markReadIfVisible();
    },
    { merge: Math.min },
  );

  function connect(s: SessionResponse) {
    me.value = s.user;
    token.value = s.token;
    const c = useChatSocket({
      token: s.token,
      userId: s.user.id,
      handlers: {
        ready: (login, resumed) => onReady(login, resumed).catch(() => undefined),
        resync: () => catchUp(true).catch(() => undefined),
        message(m) {
          const gap = loaded.value ? gapFor(segments.value, m) : null;
          segments.value = addStored(segments.value, m.conversationId, [fromServer(m)]);
          if (gap !== null) void gaps.request(m.conversationId, gap);
          if (m.senderId !== myId()) {
            agentTyping.value = false;
            if (!agent.value || agent.value.id !== m.senderId) void c.allMembers().then(applyMembers, () => undefined);
            void markReadIfVisible();
          }
        },
        messagesRead(e) {
          const s = segments.value.find((x) => x.conversationId === e.conversationId);
          if (!s) return;
          segments.value = updateSegment(
            segments.value,
            e.conversationId,
            e.readerId === myId() ? { myReadSeq: Math.max(s.myReadSeq, e.seq) } : { peerReadSeq: Math.max(s.peerReadSeq, e.seq) },
          );
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
          const had = agent.value;
          queued.value = false;
          queue.value = null;
          agent.value = { id: e.agent.id, displayName: e.agent.displayName, online: true };
          rememberAgent(e.agent.id, e.agent.displayName);
          // A transfer from one agent to another says so in a system message of its own.
          if (!had || had.id === e.agent.id) {
            const last = messages.value[messages.value.length - 1];
            assigned.value = { name: e.agent.displayName, afterKey: last?.key ?? null, conversationId: e.conversationId };
          }
        },
        queued() {
          agent.value = null;
          agentTyping.value = false;
          queued.value = true;
          void refreshQueue();
        },
        queuePosition(e) {
          queued.value = true;
          queue.value = applyQueuePosition(queue.value, e);
        },
        resolved(e) {
          if (!segments.value.some((s) => s.conversationId === e.conversationId)) return;
          segments.value = updateSegment(segments.value, e.conversationId, { resolved: true });
          if (endedSegment(segments.value)?.conversationId === e.conversationId) {
            agent.value = null;
            agentTyping.value = false;
            queued.value = false;
            queue.value = null;
            rating.value = { state: "idle" };
          }
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
      const ack = await c.sendMessage(
        local.attachment
          ? { attachmentId: local.attachment.id, clientMsgId: local.clientMsgId, ...(local.content ? { content: local.content } : {}) }
          : { content: local.content, clientMsgId: local.clientMsgId },
      );
      segments.value = confirmLocal(segments.value, local, ack);
    } catch (e) {
      failures.value = { ...failures.value, [local.key]: failureOf(e) };
      segments.value = updateLocal(segments.value, local.key, (l) => setDelivery(l, local.key, "failed"));
    }
  }

  function write(content: string, attachment?: Attachment) {
    if (!me.value) return;
    typingSender.stop();
    const local = localMessage({
      senderId: me.value.id,
      receiverId: agent.value?.id ?? null,
      content,
      clientMsgId: newClientMsgId(),
      now: new Date(),
      ...(attachment ? { attachment } : {}),
    });
    segments.value = addLocal(segments.value, local);
    void deliver(local);
  }

  function send(content: string) {
    if (!content.trim()) return;
    write(content);
  }

  /** Uploads a file, then sends it as a message. */
  async function sendFile(file: File) {
    if (!me.value || uploading.value) return;
    uploading.value = file.name;
    uploadProblem.value = null;
    try {
      const { attachment } = await api.uploadAttachment(token.value, file);
      write("", attachment);
    } catch (e) {
      uploadProblem.value = failureOf(e);
    } finally {
      uploading.value = null;
    }
  }

  /** Sends a failed message again with the same clientMsgId, so the server stores it once. */
  function retry(key: string) {
    const m = messages.value.find((x) => x.key === key && x.delivery === "failed");
    if (!m) return;
    const rest = { ...failures.value };
    delete rest[key];
    failures.value = rest;
    segments.value = updateLocal(segments.value, key, (l) => setDelivery(l, key, "sending"));
    void deliver({ ...m, delivery: "sending" });
  }

  async function loadOlder() {
    const c = chat.value;
    if (!c || loadingOlder.value || !hasMoreBefore.value) return;
    const first = segments.value[0];
    loadingOlder.value = true;
    try {
      const oldest = first?.messages.find((m) => m.id !== null);
      if (first?.conversationId && first.hasMoreBefore && oldest?.id) {
        const page = await c.history({ conversationId: first.conversationId, beforeId: oldest.id, limit: PAGE });
        segments.value = addBefore(segments.value, first.conversationId, page.messages.map(fromServer), page.hasMore);
      } else {
        const next = olderConversations[0];
        if (!next) return;
        const page = await c.history({ conversationId: next.id, limit: PAGE });
        olderConversations = olderConversations.slice(1);
        olderCount.value = olderConversations.length;
        const msgs = page.messages.map(fromServer);
        segments.value = addOlder(
          segments.value,
          emptySegment(next.id, {
            messages: msgs,
            hasMoreBefore: page.hasMore,
            peerReadSeq: page.peerReadSeq,
            resolved: next.status === "resolved",
            rating: next.rating,
            myReadSeq: msgs[msgs.length - 1]?.seq ?? 0,
          }),
        );
      }
    } catch {
      // The user can scroll up again.
    } finally {
      loadingOlder.value = false;
    }
  }

  /** Rates the conversation that just ended (1..5 stars, an optional comment). */
  async function rate(score: number, comment: string) {
    const c = chat.value;
    const s = ended.value;
    if (!c || !s?.conversationId || rating.value.state === "sending") return;
    const conversationId = s.conversationId;
    rating.value = { state: "sending" };
    try {
      await c.rate({ conversationId, score, ...(comment.trim() ? { comment: comment.trim() } : {}) });
      segments.value = updateSegment(segments.value, conversationId, { rating: score });
      rating.value = { state: "done" };
    } catch (e) {
      const f = failureOf(e);
      if (f.code === "conflict") {
        // Rated already (in another tab): nothing more to ask.
        segments.value = updateSegment(segments.value, conversationId, { rating: score });
        rating.value = { state: "done" };
      } else {
        rating.value = { state: "failed", failure: f };
      }
    }
  }

  /** After an expired session: a new visitor and a new conversation. */
  async function restart() {
    gaps.cancel();
    chat.value?.close();
    chat.value = null;
    segments.value = [];
    olderConversations = [];
    olderCount.value = 0;
    loaded.value = false;
    agent.value = null;
    queue.value = null;
    queued.value = false;
    rating.value = { state: "idle" };
    phase.value = "idle";
    await start(true);
  }

  watch(visible, () => void markReadIfVisible());

  return {
    phase,
    me,
    token,
    messages,
    segments,
    readSeqs,
    agent,
    agentNames,
    queued,
    queue,
    agentTyping,
    assigned,
    ended,
    rating,
    hasMoreBefore,
    loadingOlder,
    loaded,
    visible,
    failures,
    uploading,
    uploadProblem,
    connection,
    unread,
    start,
    send,
    sendFile,
    retry,
    loadOlder,
    rate,
    restart,
    dismissUploadProblem: () => (uploadProblem.value = null),
    typingInput: () => typingSender.input(),
    typingStop: () => typingSender.stop(),
    close: () => {
      gaps.cancel();
      chat.value?.close();
    },
  };
}
