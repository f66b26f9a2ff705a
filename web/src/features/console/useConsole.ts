// The agent's side: the customer list, one message list per customer (loaded when opened), drafts,
// read marking, and attention (sound, notification) for messages that arrive while the tab is hidden.
import { computed, reactive, ref, shallowRef, watch } from "vue";
import { createKeyedCoalescer } from "../../shared/coalesce";
import { newClientMsgId } from "../../shared/format";
import {
  applyMessage,
  applyPreview,
  previewOf,
  mergeMemberList,
  setOnline,
  setOnlineSet,
  setUnread,
  sortByActivity,
  totalUnread,
  type MemberEntry,
} from "../../shared/members";
import {
  confirmed,
  countUnread,
  fromServer,
  lastSeq,
  latestFromPeer,
  localMessage,
  mergeMessages,
  oldestStored,
  readSeqFromUnread,
  seqGap,
  setDelivery,
  type ChatMessage,
} from "../../shared/messages";
import type { Id, Member, Message, SessionResponse } from "../../shared/protocol";
import { createTypingSender, TYPING_STALE_MS, type TypingSender } from "../../shared/typing";
import { ChatError, useChatSocket, type ChatSocket, type UnauthorizedReason } from "../../shared/useChatSocket";

export interface Conversation {
  peerId: Id;
  messages: ChatMessage[];
  /** The latest page has been fetched: the list has no gap up to the live messages. */
  loaded: boolean;
  loading: boolean;
  hasMoreBefore: boolean;
  loadingOlder: boolean;
  /** The customer read my messages up to this seq. */
  peerReadSeq: number;
  /** I read the customer's messages up to this seq. */
  myReadSeq: number;
  typing: boolean;
  failures: Record<string, string>;
}

export interface Attention {
  /** A message from a customer arrived while the tab was hidden. */
  (m: Message, from: MemberEntry | undefined): void;
}

const PAGE = 50;
const DRAFTS_KEY = "kefu.console.drafts";

function loadDrafts(): Record<Id, string> {
  try {
    const v = JSON.parse(window.sessionStorage.getItem(DRAFTS_KEY) ?? "{}") as unknown;
    if (typeof v !== "object" || v === null) return {};
    return Object.fromEntries(Object.entries(v).filter(([, d]) => typeof d === "string")) as Record<Id, string>;
  } catch {
    return {};
  }
}

export function useConsole(session: SessionResponse, attention: Attention) {
  const me = session.user;
  const members = ref<MemberEntry[]>([]);
  const membersLoaded = ref(false);
  const conversations = reactive<Record<Id, Conversation>>({});
  const activeId = ref<Id | null>(null);
  const drafts = reactive<Record<Id, string>>(loadDrafts());
  /** The agent can see the page now (tab visible). */
  const pageVisible = ref(true);
  const chat = shallowRef<ChatSocket | null>(null);
  const typingSenders = new Map<Id, TypingSender>();
  const typingTimers = new Map<Id, ReturnType<typeof setTimeout>>();

  const sortedMembers = computed(() => sortByActivity(members.value));
  const unreadTotal = computed(() => totalUnread(members.value));
  const active = computed(() => (activeId.value ? conversations[activeId.value] : undefined));
  const activeMember = computed(() => members.value.find((m) => m.id === activeId.value));
  const connection = computed(() => chat.value?.state.value ?? "connecting");

  watch(
    drafts,
    (d) => {
      try {
        window.sessionStorage.setItem(DRAFTS_KEY, JSON.stringify(d));
      } catch {
        // Drafts still survive switching conversations, just not a reload.
      }
    },
    { deep: true },
  );

  function conv(peerId: Id): Conversation {
    let c = conversations[peerId];
    if (!c) {
      conversations[peerId] = {
        peerId,
        messages: [],
        loaded: false,
        loading: false,
        hasMoreBefore: false,
        loadingOlder: false,
        peerReadSeq: 0,
        myReadSeq: 0,
        typing: false,
        failures: {},
      };
      c = conversations[peerId]!;
    }
    return c;
  }

  function lastPreview(list: readonly Message[]) {
    const m = list[list.length - 1];
    return m ? previewOf(m, me.id) : undefined;
  }

  function member(peerId: Id) {
    return members.value.find((m) => m.id === peerId);
  }

  function setMembers(fresh: Member[]) {
    members.value = mergeMemberList(members.value, fresh, me.id);
    membersLoaded.value = true;
    // Unread counts of loaded conversations are known more precisely here.
    for (const e of members.value) {
      const c = conversations[e.id];
      if (c?.loaded) c.myReadSeq = Math.max(c.myReadSeq, readSeqFromUnread(c.messages, me.id, e.unread));
    }
  }

  // One all_member request at a time; asked again while one is under way, it runs once more after,
  // so the counts end up as the server's even while messages keep arriving.
  let refreshing: Promise<void> | null = null;
  let refreshAgain = false;
  function refreshMembers(): Promise<void> {
    const c = chat.value;
    if (!c) return Promise.resolve();
    if (refreshing) {
      refreshAgain = true;
      return refreshing;
    }
    refreshing = c
      .allMembers()
      .then(setMembers)
      .catch(() => undefined)
      .finally(() => {
        refreshing = null;
        if (refreshAgain) {
          refreshAgain = false;
          void refreshMembers();
        }
      });
    return refreshing;
  }

  let reading = new Set<Id>();
  async function markReadIfVisible(peerId: Id | null = activeId.value) {
    const c = chat.value;
    if (!c || !peerId || peerId !== activeId.value || !pageVisible.value || reading.has(peerId)) return;
    const cv = conversations[peerId];
    if (!cv?.loaded) return;
    const latest = latestFromPeer(cv.messages, me.id);
    if (!latest?.id || latest.seq === null || latest.seq <= cv.myReadSeq) {
      if (member(peerId)?.unread) members.value = setUnread(members.value, peerId, 0);
      return;
    }
    reading.add(peerId);
    try {
      const ack = await c.markRead(peerId, latest.id);
      cv.myReadSeq = Math.max(cv.myReadSeq, ack.seq);
      members.value = setUnread(members.value, peerId, countUnread(cv.messages, me.id, cv.myReadSeq));
    } catch {
      // Tried again on the next message or when the tab becomes visible.
    } finally {
      reading.delete(peerId);
    }
  }

  async function ensureLoaded(peerId: Id) {
    const c = chat.value;
    const cv = conv(peerId);
    if (!c || cv.loaded || cv.loading) return;
    cv.loading = true;
    try {
      const page = await c.history({ peerId, limit: PAGE });
      cv.messages = mergeMessages(cv.messages, page.messages.map(fromServer));
      cv.hasMoreBefore = page.hasMore;
      cv.peerReadSeq = Math.max(cv.peerReadSeq, page.peerReadSeq);
      cv.myReadSeq = readSeqFromUnread(cv.messages, me.id, member(peerId)?.unread ?? 0);
      cv.loaded = true;
      members.value = applyPreview(members.value, peerId, lastPreview(page.messages));
      void markReadIfVisible(peerId);
    } catch {
      // Opening the conversation again retries.
    } finally {
      cv.loading = false;
    }
  }

  /** Every message of a loaded conversation after `afterSeq`, page after page. */
  async function fetchAfter(cv: Conversation, afterSeq: number) {
    const c = chat.value;
    if (!c) return;
    const missed = await c.historyAfter(afterSeq, cv.peerId);
    cv.messages = mergeMessages(cv.messages, missed.messages.map(fromServer));
    cv.peerReadSeq = Math.max(cv.peerReadSeq, missed.peerReadSeq);
    members.value = applyPreview(members.value, cv.peerId, lastPreview(missed.messages));
  }

  async function resync() {
    for (const cv of Object.values(conversations)) {
      if (!cv.loaded) continue;
      try {
        await fetchAfter(cv, lastSeq(cv.messages));
      } catch {
        // The next reconnect or resync tries again.
      }
    }
  }

  /** After a reconnect (`resumed`) or the server's `resync`: members, missed messages, the open one. */
  async function catchUp(resumed: boolean) {
    await refreshMembers();
    if (resumed) await resync();
    if (activeId.value) {
      await ensureLoaded(activeId.value);
      void markReadIfVisible();
    }
  }

  // A live message beyond the next seq: fetch what is missing before it, one fetch at a time per
  // conversation (from the lowest gap asked for meanwhile).
  const gaps = createKeyedCoalescer<Id, { peerId: Id; afterSeq: number }>(
    async (_conversationId, { peerId, afterSeq }) => {
      const cv = conversations[peerId];
      if (!cv?.loaded) return;
      await fetchAfter(cv, afterSeq);
      members.value = setUnread(members.value, peerId, countUnread(cv.messages, me.id, cv.myReadSeq));
      void markReadIfVisible(peerId);
    },
    { merge: (a, b) => ({ peerId: b.peerId, afterSeq: Math.min(a.afterSeq, b.afterSeq) }) },
  );

  function onMessage(m: Message) {
    const fromMe = m.senderId === me.id;
    const peer = fromMe ? m.receiverId : m.senderId;
    if (!peer) return;
    const reading = peer === activeId.value && pageVisible.value;
    const cv = conversations[peer];
    if (cv && (cv.loaded || cv.loading)) {
      const gap = cv.loaded ? seqGap(cv.messages, m) : null;
      cv.messages = mergeMessages(cv.messages, [fromServer(m)]);
      if (gap !== null) void gaps.request(m.conversationId, { peerId: peer, afterSeq: gap });
    }
    if (!fromMe && cv) cv.typing = false;
    const r = applyMessage(members.value, m, me.id, reading);
    members.value = r.list;
    // A customer we do not know yet (a new conversation), or counts about to be replaced.
    if (!r.known || refreshing) void refreshMembers();
    if (!fromMe) {
      if (!pageVisible.value) attention(m, member(peer));
      void markReadIfVisible(peer);
    }
  }

  function connect() {
    const c = useChatSocket({
      token: session.token,
      userId: me.id,
      handlers: {
        ready: (_login, resumed) => catchUp(resumed),
        resync: () => catchUp(true),
        message: onMessage,
        messagesRead(e) {
          if (e.readerId === me.id) {
            const peer = members.value.find((m) => m.conversationId === e.conversationId)?.id;
            const cv = peer ? conversations[peer] : undefined;
            if (peer && cv?.loaded) {
              cv.myReadSeq = Math.max(cv.myReadSeq, e.seq);
              members.value = setUnread(members.value, peer, countUnread(cv.messages, me.id, cv.myReadSeq));
            } else {
              void refreshMembers();
            }
          } else {
            const cv = conv(e.readerId);
            cv.peerReadSeq = Math.max(cv.peerReadSeq, e.seq);
          }
        },
        typing(e) {
          const cv = conv(e.userId);
          cv.typing = e.typing;
          clearTimeout(typingTimers.get(e.userId));
          if (e.typing) typingTimers.set(e.userId, setTimeout(() => (cv.typing = false), TYPING_STALE_MS));
        },
        members: setMembers,
        onlineUsers(ids) {
          members.value = setOnlineSet(members.value, ids);
        },
        presence(userId, online) {
          members.value = setOnline(members.value, userId, online);
        },
        assigned() {
          void refreshMembers();
        },
        unauthorized(reason) {
          expired.value = reason;
        },
      },
    });
    chat.value = c;
    c.start();
  }

  /** Set when the server refused this agent's token: the console signs out and says why. */
  const expired = ref<UnauthorizedReason | null>(null);

  function select(peerId: Id | null) {
    const prev = activeId.value;
    if (prev && prev !== peerId) typingSenders.get(prev)?.stop();
    activeId.value = peerId;
    if (peerId) void ensureLoaded(peerId).then(() => markReadIfVisible(peerId));
  }

  async function deliver(peerId: Id, local: ChatMessage) {
    const c = chat.value;
    const cv = conv(peerId);
    if (!c || !local.clientMsgId) return;
    try {
      const ack = await c.sendMessage({ receiverId: peerId, content: local.content, clientMsgId: local.clientMsgId });
      cv.messages = mergeMessages(cv.messages, [confirmed(local, ack)]);
    } catch (e) {
      cv.failures = { ...cv.failures, [local.key]: e instanceof ChatError ? e.code : "internal" };
      cv.messages = setDelivery(cv.messages, local.key, "failed");
    }
  }

  function send(peerId: Id, content: string) {
    if (!content.trim()) return;
    typingSenders.get(peerId)?.stop();
    const cv = conv(peerId);
    const local = localMessage({ senderId: me.id, receiverId: peerId, content, clientMsgId: newClientMsgId(), now: new Date() });
    cv.messages = mergeMessages(cv.messages, [local]);
    members.value = applyPreview(members.value, peerId, previewOf(local, me.id));
    void deliver(peerId, local);
  }

  function retry(peerId: Id, key: string) {
    const cv = conv(peerId);
    const m = cv.messages.find((x) => x.key === key && x.delivery === "failed");
    if (!m) return;
    const rest = { ...cv.failures };
    delete rest[key];
    cv.failures = rest;
    cv.messages = setDelivery(cv.messages, key, "sending");
    void deliver(peerId, { ...m, delivery: "sending" });
  }

  async function loadOlder(peerId: Id) {
    const c = chat.value;
    const cv = conv(peerId);
    const oldest = oldestStored(cv.messages);
    if (!c || !oldest?.id || !cv.hasMoreBefore || cv.loadingOlder) return;
    cv.loadingOlder = true;
    try {
      const page = await c.history({ peerId, beforeId: oldest.id, limit: PAGE });
      cv.messages = mergeMessages(cv.messages, page.messages.map(fromServer));
      cv.hasMoreBefore = page.hasMore;
      cv.peerReadSeq = Math.max(cv.peerReadSeq, page.peerReadSeq);
    } catch {
      // Scrolling up again retries.
    } finally {
      cv.loadingOlder = false;
    }
  }

  function typingInput(peerId: Id) {
    let s = typingSenders.get(peerId);
    if (!s) {
      s = createTypingSender({ send: (t) => chat.value?.setTyping(t, peerId) });
      typingSenders.set(peerId, s);
    }
    s.input();
  }

  watch(pageVisible, (v) => {
    if (v) void markReadIfVisible();
  });

  return {
    me,
    members: sortedMembers,
    membersLoaded,
    conversations,
    activeId,
    active,
    activeMember,
    drafts,
    pageVisible,
    unreadTotal,
    connection,
    expired,
    connect,
    select,
    send,
    retry,
    loadOlder,
    typingInput,
    typingStop: (peerId: Id) => typingSenders.get(peerId)?.stop(),
    refreshMembers,
    close() {
      typingSenders.forEach((s) => s.stop());
      gaps.cancel();
      chat.value?.close();
      chat.value = null;
      reading = new Set();
    },
  };
}
