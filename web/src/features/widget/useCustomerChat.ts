// The customer's side: session, the agent, the queue and the rating of a resolved conversation, over
// one conversation engine that holds the conversations (the current one and the resolved ones before
// it, one segment each: seqs restart at 1 in every conversation).
//
// Opening the chat starts nothing: a visitor without an open conversation has no agent and no place
// in the queue. Its first message starts the conversation, and that message's ack says where it went
// (`started`: an agent, or the queue); `conversation_assigned` or `queue_position` follow.
import { computed, markRaw, ref, shallowRef, watch } from "vue";
import { api } from "../../shared/api";
import { createConversation, type ConversationEngine } from "../../shared/conversation/engine";
import { ownConversationsLink } from "../../shared/conversation/link";
import { peerReadSeqs, segmentOf, type Segment } from "../../shared/conversation/segments";
import { failureOf, type Failure } from "../../shared/errors";
import type { OfflineMessageResponse, RequestedAgent } from "../../shared/offline";
import type { ConversationSummary, Id, LoginAck, Member, PrivateMessageAck, SessionResponse, User } from "../../shared/protocol";
import { clearSession, loadSession, saveSession } from "../../shared/session";
import { createTypingSender, TYPING_STALE_MS } from "../../shared/typing";
import { useChatSocket, type ChatSocket } from "../../shared/useChatSocket";
import { endedSegment, heldUpTo, type Joined } from "./endings";
import { applyQueuePosition, type QueueState } from "./queue";

export type Phase = "idle" | "starting" | "ready" | "error" | "expired";

export interface AgentInfo {
  id: Id;
  displayName: string;
  online: boolean;
}

export type RatingState = { state: "idle" } | { state: "sending" } | { state: "done" } | { state: "failed"; failure: Failure };

/** "E-mail me the transcript" of an ended conversation. */
export type TranscriptMailState =
  | { state: "idle" }
  | { state: "sending" }
  | { state: "sent"; to: string }
  | { state: "failed"; failure: Failure };

export interface CustomerChatOptions {
  /** A resume link's token (`?resume=`): its session becomes this visitor's. */
  resumeToken?: string | null;
  /** The agent the chat link asks for (`csId` of the login). */
  csId?: Id | null;
  /** A `queue_position` came (the chat asks for the availability again). */
  onQueuePosition?: () => void;
}

const PAGE = 50;

export function useCustomerChat(options: CustomerChatOptions = {}) {
  const phase = ref<Phase>("idle");
  const me = ref<User | null>(null);
  const token = ref("");
  const engine = shallowRef<ConversationEngine | null>(null);
  const segments = computed<Segment[]>(() => engine.value?.state.segments ?? []);
  const agent = ref<AgentInfo | null>(null);
  const queued = ref(false);
  const queue = ref<QueueState | null>(null);
  const agentTyping = ref(false);
  /** "… joined the conversation": who took which conversation, after which of its messages, and when. */
  const assigned = ref<(Joined & { agentId: Id; name: string; at: string }) | null>(null);
  const loadingOlder = ref(false);
  const loaded = computed(() => engine.value?.state.loaded ?? false);
  /** Whether the customer can see the chat now (tab visible and, embedded, the panel open). */
  const visible = ref(true);
  const failures = computed(() => engine.value?.state.failures ?? {});
  /** The file being uploaded, and why the last upload failed. */
  const uploading = computed(() => engine.value?.state.uploading ?? null);
  const uploadProblem = ref<Failure | null>(null);
  const rating = ref<RatingState>({ state: "idle" });
  /** My score per conversation, once rated (1..5). */
  const ratings = ref<Record<Id, number | null>>({});
  /** Names of the agents seen in this chat (after a transfer, older messages are someone else's). */
  const agentNames = ref<Record<Id, string>>({});
  const chat = shallowRef<ChatSocket | null>(null);
  /** The resume link did not work (forged, expired): the chat went on as a new visitor. */
  const resumeFailed = ref(false);
  let resumeToken = options.resumeToken ?? null;
  /** The agent asked for (`csId`) as the login ack tells it: offline, and until when it is waited for. */
  const requestedAgent = ref<RequestedAgent | null>(null);
  /** The open conversation that was left through the offline form. */
  const leftOfflineId = ref<Id | null>(null);
  /** Where replies to a message left offline go, when this page knows. */
  const leftOfflineEmail = ref<string | null>(null);
  const transcriptMail = ref<TranscriptMailState>({ state: "idle" });
  /** Resolved conversations older than the oldest shown, newest first (from `GET /api/conversations`). */
  let olderConversations: ConversationSummary[] = [];

  const messages = computed(() => engine.value?.messages.value ?? []);
  const readSeqs = computed(() => peerReadSeqs(segments.value));
  const hasMoreBefore = computed(() => (segments.value[0]?.hasMoreBefore ?? false) || olderCount.value > 0);
  const olderCount = ref(0);
  const connection = computed(() => chat.value?.state.value ?? "connecting");
  const myId = () => me.value?.id ?? "";
  const unread = computed(() => (loaded.value ? (engine.value?.unread() ?? 0) : 0));
  /** Started without a stored session and without creating a visitor: nobody to show yet. */
  const sessionless = ref(false);
  /**
   * Whether this visitor has an open conversation (an agent may write to it): false without a
   * session, after the session ended, or once the latest conversation is resolved; null until known.
   */
  const openConversation = computed<boolean | null>(() => {
    if (phase.value === "expired") return false;
    if (!me.value) return sessionless.value ? false : null;
    if (!loaded.value) return null;
    const latest = segments.value[segments.value.length - 1];
    return !!latest?.conversationId && !latest.resolved;
  });
  /** The open conversation waits as a message left offline (we reply by e-mail too). */
  const leftOffline = computed(() => {
    if (!openConversation.value || !leftOfflineId.value) return false;
    return segments.value[segments.value.length - 1]?.conversationId === leftOfflineId.value;
  });
  /** The current conversation was resolved: show that it ended and ask for a rating. */
  const ended = computed(() => {
    const s = endedSegment(segments.value);
    return s?.conversationId ? { conversationId: s.conversationId, rating: ratings.value[s.conversationId] ?? null } : null;
  });

  let typingTimer: ReturnType<typeof setTimeout> | undefined;
  const typingSender = createTypingSender({
    send: (t) => {
      if (agent.value) chat.value?.setTyping(t);
    },
  });

  function rememberAgent(id: Id, name: string) {
    if (agentNames.value[id] !== name) agentNames.value = { ...agentNames.value, [id]: name };
  }

  /** An agent took conversation `conversationId` (`conversation_assigned`, or the ack that started it). */
  function joined(conversationId: Id, a: { id: Id; displayName: string }) {
    const had = agent.value;
    queued.value = false;
    queue.value = null;
    agent.value = { id: a.id, displayName: a.displayName, online: had?.id === a.id ? had.online : true };
    rememberAgent(a.id, a.displayName);
    // A transfer from one agent to another says so in a system message of its own; the ack and the
    // event of one assignment make one line.
    const told = assigned.value?.conversationId === conversationId && assigned.value.agentId === a.id;
    if ((!had || had.id === a.id) && !told) {
      assigned.value = {
        conversationId,
        afterSeq: heldUpTo(segments.value, conversationId),
        agentId: a.id,
        name: a.displayName,
        at: new Date().toISOString(),
      };
    }
  }

  /** The ack of my message that started a conversation: it went to an agent, or waits in the queue. */
  async function started(ack: PrivateMessageAck) {
    const s = ack.started;
    const c = chat.value;
    if (!s || !c) return;
    // `conversation_assigned` usually came first; it may also come later, or have been missed.
    if (assigned.value?.conversationId === ack.conversationId) return;
    if (s.csId) {
      if (agent.value?.id === s.csId) return;
      const list = await c.allMembers().catch(() => null);
      const a = list?.find((m) => m.id === s.csId);
      if (a && assigned.value?.conversationId !== ack.conversationId) joined(ack.conversationId, a);
      else if (list) applyMembers(list);
    } else if (s.queued) {
      queued.value = true;
      // Its place comes as `queue_position` (perhaps already did).
      if (queue.value?.conversationId !== ack.conversationId) {
        queue.value = { conversationId: ack.conversationId, position: null, estimatedWaitSeconds: null };
      }
    }
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

  async function applyLogin(login: LoginAck) {
    const r = (login as LoginAck & { requestedAgent?: RequestedAgent | null }).requestedAgent;
    requestedAgent.value = r && typeof r === "object" && typeof r.id === "string" ? r : null;
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
    const e = engine.value;
    for (const c of list) {
      const s = e && segmentOf(e.state.segments, c.id);
      if (!s) continue;
      const resolved = c.status === "resolved";
      if (s.resolved !== resolved) e.setResolved(c.id, resolved);
      setRating(c.id, c.rating);
    }
  }

  function setRating(conversationId: Id, score: number | null) {
    if (ratings.value[conversationId] !== score) ratings.value = { ...ratings.value, [conversationId]: score };
  }

  /** After a login (`resumed` on a reconnect) or the server's `resync`: the agent, the messages. */
  async function catchUp(resumed: boolean) {
    const c = chat.value;
    const e = engine.value;
    if (!c || !e) return;
    const members = await c.allMembers().catch(() => null);
    if (members) applyMembers(members);
    if (!resumed || !e.state.loaded) {
      const [page, list] = await Promise.all([c.history({ limit: PAGE }), listConversations()]);
      const id = page.conversationId;
      const summary = list?.find((x) => x.id === id);
      const resolved = summary?.status === "resolved";
      if (id && summary) setRating(id, summary.rating);
      if (id && summary && !resolved && summary.offline) leftOfflineId.value = id;
      // The count was taken before the page: a reply stored in between is unread, not read.
      const counted = members?.[0];
      const countedUpTo = counted && id && counted.conversationId === id ? (counted.lastMessage?.seq ?? 0) : undefined;
      e.takeLatest(page, { resolved, unread: resolved ? 0 : (counted?.message_count ?? 0), countedUpTo });
      olderConversations = (list ?? []).filter((x) => x.id !== id && !segmentOf(e.state.segments, x.id));
      olderCount.value = olderConversations.length;
    } else {
      await e.catchUp();
      // A conversation started meanwhile (in another tab) comes after it.
      const latest = await c.history({ limit: PAGE });
      if (latest.conversationId && latest.messages.length > 0 && !segmentOf(e.state.segments, latest.conversationId)) {
        e.takePage(latest);
      }
      const list = await listConversations();
      if (list) applyStatuses(list);
    }
    void e.markRead();
  }

  function connect(s: SessionResponse) {
    me.value = s.user;
    token.value = s.token;
    const e = createConversation({
      me: s.user.id,
      link: ownConversationsLink(() => chat.value, s.token),
      visible: () => visible.value,
      receiverId: () => agent.value?.id ?? null,
      wrote: () => typingSender.stop(),
      sent: (ack) => void started(ack),
    });
    engine.value = markRaw(e);
    const c = useChatSocket({
      token: s.token,
      userId: s.user.id,
      ...(options.csId ? { csId: options.csId } : {}),
      handlers: {
        ready: (login, resumed) => onReady(login, resumed).catch(() => undefined),
        resync: () => catchUp(true).catch(() => undefined),
        message(m) {
          e.receive(m);
          if (m.senderId !== myId()) {
            agentTyping.value = false;
            if (!agent.value || agent.value.id !== m.senderId) void c.allMembers().then(applyMembers, () => undefined);
          }
        },
        messagesRead: (read) => void e.readBy(read),
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
        assigned: (e) => joined(e.conversationId, e.agent),
        queued() {
          agent.value = null;
          agentTyping.value = false;
          queued.value = true;
          void refreshQueue();
        },
        queuePosition(e) {
          queued.value = true;
          queue.value = applyQueuePosition(queue.value, e);
          options.onQueuePosition?.();
        },
        resolved(r) {
          if (!segmentOf(segments.value, r.conversationId)) return;
          e.setResolved(r.conversationId, true);
          if (endedSegment(segments.value)?.conversationId === r.conversationId) {
            agent.value = null;
            agentTyping.value = false;
            queued.value = false;
            queue.value = null;
            rating.value = { state: "idle" };
            transcriptMail.value = { state: "idle" };
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
    if (resumeToken !== null) {
      const token = resumeToken;
      resumeToken = null;
      phase.value = "starting";
      const resumed = token ? await api.resumeVisitor({ token }).catch(() => null) : null;
      phase.value = "idle";
      if (resumed?.token && resumed.user?.role === "customer") {
        saveSession("visitor", resumed);
        connect(resumed);
        return;
      }
      // Forged or expired: say so, and go on as this device's visitor, or a new one.
      resumeFailed.value = true;
    }
    const stored = loadSession("visitor");
    if (stored && stored.user.role === "customer") {
      connect(stored);
      return;
    }
    if (!create) {
      sessionless.value = true;
      return;
    }
    sessionless.value = false;
    phase.value = "starting";
    try {
      const s = await api.createVisitor({});
      saveSession("visitor", s);
      connect(s);
    } catch {
      phase.value = "error";
    }
  }

  function send(content: string) {
    engine.value?.send(content);
  }

  /** Uploads a file, then sends it as a message. */
  async function sendFile(file: File) {
    const e = engine.value;
    if (!e || !me.value || e.state.uploading) return;
    uploadProblem.value = null;
    uploadProblem.value = await e.sendFile(file);
  }

  /** Sends a failed message again with the same clientMsgId, so the server stores it once. */
  function retry(key: string) {
    engine.value?.retry(key);
  }

  /** Scrolling up: older messages of the oldest conversation shown, else the conversation before it. */
  async function loadOlder() {
    const c = chat.value;
    const e = engine.value;
    if (!c || !e || loadingOlder.value || !hasMoreBefore.value) return;
    loadingOlder.value = true;
    try {
      if (segments.value[0]?.hasMoreBefore) {
        await e.loadOlder();
      } else {
        const next = olderConversations[0];
        if (!next) return;
        const page = await c.history({ conversationId: next.id, limit: PAGE });
        olderConversations = olderConversations.slice(1);
        olderCount.value = olderConversations.length;
        setRating(next.id, next.rating);
        e.addOlderConversation(page, next.status === "resolved");
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
      setRating(conversationId, score);
      rating.value = { state: "done" };
    } catch (e) {
      const f = failureOf(e);
      if (f.code === "conflict") {
        // Rated already (in another tab): nothing more to ask.
        setRating(conversationId, score);
        rating.value = { state: "done" };
      } else {
        rating.value = { state: "failed", failure: f };
      }
    }
  }

  /** The offline form's message was stored: it shows in the conversation, which waits for an answer. */
  function leftMessage(r: OfflineMessageResponse, email: string | null) {
    const e = engine.value;
    if (r.message && typeof r.message === "object") e?.receive(r.message);
    leftOfflineId.value = r.conversationId;
    leftOfflineEmail.value = email;
    if (!agent.value) {
      queued.value = r.place !== null;
      queue.value = r.place !== null ? { conversationId: r.conversationId, position: r.place, estimatedWaitSeconds: null } : null;
    }
  }

  /** E-mails the customer the transcript of the conversation that just ended. */
  async function emailTranscript() {
    const id = ended.value?.conversationId;
    if (!id || transcriptMail.value.state === "sending") return;
    transcriptMail.value = { state: "sending" };
    try {
      const r = await api.emailTranscript(token.value, id);
      transcriptMail.value = { state: "sent", to: r?.to ?? "" };
    } catch (e) {
      transcriptMail.value = { state: "failed", failure: failureOf(e) };
    }
  }

  /** After an expired session: a new visitor and a new conversation. */
  async function restart() {
    engine.value?.close();
    engine.value = null;
    chat.value?.close();
    chat.value = null;
    olderConversations = [];
    olderCount.value = 0;
    agent.value = null;
    queue.value = null;
    queued.value = false;
    rating.value = { state: "idle" };
    transcriptMail.value = { state: "idle" };
    leftOfflineId.value = null;
    requestedAgent.value = null;
    phase.value = "idle";
    await start(true);
  }

  watch(visible, () => void engine.value?.markRead());

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
    openConversation,
    resumeFailed,
    requestedAgent,
    leftOffline,
    leftOfflineEmail,
    transcriptMail,
    leftMessage,
    emailTranscript,
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
      engine.value?.close();
      chat.value?.close();
    },
  };
}
