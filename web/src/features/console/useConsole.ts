// The agent's side: the customer list, one conversation engine per customer (loaded when opened),
// drafts, notes, status and transfer, and attention (sound, notification) for messages that arrive
// while the tab is hidden.
import { computed, reactive, ref, shallowRef, watch } from "vue";
import { api } from "../../shared/api";
import { createCoalescer } from "../../shared/coalesce";
import { createConversation } from "../../shared/conversation/engine";
import { customerLink } from "../../shared/conversation/link";
import { emptySegment } from "../../shared/conversation/segments";
import { failureOf, type Failure } from "../../shared/errors";
import {
  applyMessage,
  applyPreview,
  previewOf,
  mergeMemberList,
  peerOfConversation,
  removeMember,
  setOnline,
  setOnlineSet,
  setUnread,
  sortByActivity,
  totalUnread,
  type MemberEntry,
} from "../../shared/members";
import type {
  AgentStatus,
  AvailableAgent,
  Id,
  Member,
  Message,
  Note,
  SessionResponse,
} from "../../shared/protocol";
import { createTypingSender, TYPING_STALE_MS, type TypingSender } from "../../shared/typing";
import { useChatSocket, type ChatSocket, type UnauthorizedReason } from "../../shared/useChatSocket";
import { newConversation, type Conversation } from "./conversation";

export type { Conversation } from "./conversation";

/** Why a conversation left the list, for the line that says so. */
export type Departure =
  | { kind: "resolved"; name: string }
  | { kind: "transferred"; name: string; to: string | null };

export interface Attention {
  /** A message from a customer arrived while the tab was hidden. */
  (m: Message, from: MemberEntry | undefined): void;
}

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
  /** Available (routing gives me customers) or away; null until the server says. */
  const status = ref<AgentStatus | null>(null);
  const statusBusy = ref(false);
  /** The other agents (transfer targets) and the names of every agent seen. */
  const agents = shallowRef<AvailableAgent[]>([]);
  const agentNames = ref<Record<Id, string>>({ [session.user.id]: session.user.displayName });
  /** Per customer: the last failed upload or note. */
  const problems = reactive<Record<Id, Failure & { note?: boolean }>>({});
  /** Per customer: an action under way. */
  const busy = reactive<Record<Id, "resolving">>({});
  /** The last conversation that left the list, and the last action that failed. */
  const departure = ref<Departure | null>(null);
  const actionError = ref<{ action: "resolve" | "status"; failure: Failure } | null>(null);
  const chat = shallowRef<ChatSocket | null>(null);
  const typingSenders = new Map<Id, TypingSender>();
  const typingTimers = new Map<Id, ReturnType<typeof setTimeout>>();
  /** Per customer: the file being uploaded. */
  const uploading = computed(() => {
    const out: Record<Id, string> = {};
    for (const c of Object.values(conversations)) if (c.engine.state.uploading) out[c.peerId] = c.engine.state.uploading;
    return out;
  });

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

  /** The conversation with this customer; a new one is of `conversationId` (the list's, by default). */
  function conv(peerId: Id, conversationId = member(peerId)?.conversationId ?? null): Conversation {
    let c = conversations[peerId];
    if (!c) {
      const engine = createConversation(
        {
          me: me.id,
          link: customerLink(() => chat.value, session.token, peerId),
          visible: () => peerId === activeId.value && pageVisible.value,
          receiverId: () => peerId,
          fetched(list, kind) {
            members.value = applyPreview(members.value, peerId, lastPreview(list));
            // Messages found missing were never counted live; the first page keeps the server's count.
            if (kind === "missed") members.value = setUnread(members.value, peerId, engine.unread());
          },
          read: () => (members.value = setUnread(members.value, peerId, engine.unread())),
          wrote(local) {
            typingSenders.get(peerId)?.stop();
            const content = local.content || local.attachment?.name || "";
            members.value = applyPreview(members.value, peerId, previewOf({ ...local, content }, me.id));
          },
        },
        [emptySegment(conversationId)],
      );
      conversations[peerId] = newConversation(peerId, engine);
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
    const listed = new Set(members.value.map((e) => e.id));
    for (const cv of Object.values(conversations)) {
      const e = members.value.find((m) => m.id === cv.peerId);
      // Resolved or transferred while this tab was not listening: forget it. A customer back with a
      // new conversation starts over (its seqs start at 1 again).
      if (!listed.has(cv.peerId) && !cv.loading) forget(cv.peerId);
      else if (e && cv.conversationId && e.conversationId !== cv.conversationId) restart(cv.peerId, e.conversationId);
    }
    // Unread counts of loaded conversations are known more precisely here.
    for (const e of members.value) {
      const c = conversations[e.id];
      if (c?.loaded) c.engine.readFromUnread(e.unread);
    }
  }

  // One all_member request at a time; asked again while one is under way, it runs once more after,
  // so the counts end up as the server's even while messages keep arriving. The promise resolves
  // once a list asked for after the request is in (a failed one is asked for again next time).
  const memberLists = createCoalescer<void>(async () => {
    const c = chat.value;
    if (c) setMembers(await c.allMembers());
  });
  const refreshMembers = (): Promise<void> => memberLists.request();

  async function ensureLoaded(peerId: Id) {
    const cv = conv(peerId);
    if (!chat.value || cv.loaded || cv.loading) return;
    try {
      const [, notes] = await Promise.all([
        cv.engine.load(() => member(peerId)?.unread ?? 0),
        chat.value.notes(peerId).catch(() => null),
      ]);
      if (notes && conversations[peerId] === cv) cv.notes = mergeNotes(cv.notes, notes);
    } catch {
      // Opening the conversation again retries.
    }
  }

  /** After a reconnect (`resumed`) or the server's `resync`: members, missed messages, the open one. */
  async function catchUp(resumed: boolean) {
    await refreshMembers();
    if (resumed) for (const cv of Object.values(conversations)) await cv.engine.catchUp();
    if (activeId.value) {
      await ensureLoaded(activeId.value);
      void conversations[activeId.value]?.engine.markRead();
    }
  }

  function onMessage(m: Message) {
    const fromMe = m.senderId === me.id;
    const peer = fromMe ? m.receiverId : m.senderId;
    if (!peer) return;
    const reading = peer === activeId.value && pageVisible.value;
    const known = conversations[peer];
    if (known?.conversationId && known.conversationId !== m.conversationId) restart(peer, m.conversationId);
    const cv = conversations[peer];
    // Not opened yet: the latest page, when it is, brings this message.
    if (cv && (cv.loaded || cv.loading)) cv.engine.receive(m);
    if (!fromMe && cv) cv.typing = false;
    const r = applyMessage(members.value, m, me.id, reading);
    members.value = r.list;
    // A customer we do not know yet (its first message started its conversation), or counts about
    // to be replaced.
    const listed = !r.known || !memberLists.idle ? refreshMembers() : null;
    if (!fromMe && !pageVisible.value) {
      // A new customer is named once the list that has it is in.
      if (!r.known && listed) void listed.then(() => attention(m, member(peer)));
      else attention(m, member(peer));
    }
  }

  function connect() {
    const c = useChatSocket({
      token: session.token,
      userId: me.id,
      handlers: {
        ready: (_login, resumed) => {
          void loadAgents();
          return catchUp(resumed);
        },
        resync: () => catchUp(true),
        message: onMessage,
        messagesRead(e) {
          if (e.readerId === me.id) {
            const peer = members.value.find((m) => m.conversationId === e.conversationId)?.id;
            const cv = peer ? conversations[peer] : undefined;
            if (peer && cv?.loaded && cv.engine.readBy(e)) {
              members.value = setUnread(members.value, peer, cv.engine.unread());
            } else {
              void refreshMembers();
            }
          } else {
            conv(e.readerId).engine.readBy(e);
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
        resolved(e) {
          const name = member(e.customerId)?.displayName ?? `#${e.customerId}`;
          if (depart(e.customerId, e.conversationId)) departure.value = { kind: "resolved", name };
        },
        transferred(e) {
          if (e.fromAgentId !== me.id) return;
          const name = member(e.customerId)?.displayName ?? `#${e.customerId}`;
          if (depart(e.customerId, e.conversationId)) {
            departure.value = e.toAgentId
              ? { kind: "transferred", name, to: agentNames.value[e.toAgentId] ?? null }
              : { kind: "transferred", name, to: null };
          }
        },
        agentStatus(e) {
          if (e.agentId === me.id) status.value = e.status;
        },
        note(n) {
          const peer = peerOfConversation(members.value, n.conversationId);
          const cv = peer ? conversations[peer] : undefined;
          if (cv && (!cv.conversationId || cv.conversationId === n.conversationId)) cv.notes = mergeNotes(cv.notes, [n]);
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

  /** Forgets a conversation that left my list. Returns false when it was gone already. */
  function depart(peerId: Id, conversationId: Id): boolean {
    const e = member(peerId);
    const cv = conversations[peerId];
    const mine = (e && e.conversationId === conversationId) || cv?.conversationId === conversationId;
    if (!mine) return false;
    members.value = removeMember(members.value, peerId);
    forget(peerId);
    return true;
  }

  function forget(peerId: Id) {
    conversations[peerId]?.engine.close();
    typingSenders.get(peerId)?.stop();
    typingSenders.delete(peerId);
    delete conversations[peerId];
    delete drafts[peerId];
    delete problems[peerId];
    if (activeId.value === peerId) activeId.value = null;
  }

  /** The customer came back with a new conversation: what was loaded belongs to the old one. */
  function restart(peerId: Id, conversationId: Id) {
    const old = conversations[peerId];
    old?.engine.close();
    delete conversations[peerId];
    conv(peerId, conversationId);
    if (old?.loaded && activeId.value === peerId) void ensureLoaded(peerId);
  }

  function select(peerId: Id | null) {
    const prev = activeId.value;
    if (prev && prev !== peerId) typingSenders.get(prev)?.stop();
    activeId.value = peerId;
    if (peerId) void ensureLoaded(peerId).then(() => conversations[peerId]?.engine.markRead());
  }

  function send(peerId: Id, content: string) {
    conv(peerId).engine.send(content);
  }

  /** Uploads a file into the conversation with this customer, then sends it. */
  async function sendFile(peerId: Id, file: File) {
    const cv = conv(peerId);
    if (cv.engine.state.uploading) return;
    delete problems[peerId];
    const failure = await cv.engine.sendFile(file);
    if (failure) problems[peerId] = failure;
  }

  /** A private note in this conversation: agents only. */
  async function addNote(peerId: Id, content: string): Promise<boolean> {
    const c = chat.value;
    if (!c || !content.trim()) return false;
    delete problems[peerId];
    try {
      const n = await c.addNote(peerId, content);
      const cv = conversations[peerId];
      if (cv) cv.notes = mergeNotes(cv.notes, [n]);
      return true;
    } catch (e) {
      problems[peerId] = { ...failureOf(e), note: true };
      return false;
    }
  }

  /** Ends the conversation; it leaves the list. */
  async function resolve(peerId: Id) {
    const c = chat.value;
    if (!c || busy[peerId]) return;
    busy[peerId] = "resolving";
    const name = member(peerId)?.displayName ?? `#${peerId}`;
    try {
      const ack = await c.resolve(peerId);
      if (depart(peerId, ack.conversationId)) departure.value = { kind: "resolved", name };
    } catch (e) {
      actionError.value = { action: "resolve", failure: failureOf(e) };
    } finally {
      delete busy[peerId];
    }
  }

  /** Hands the conversation to another agent, or back to the queue (`toAgentId` null). */
  async function transfer(peerId: Id, toAgentId: Id | null, note: string): Promise<Failure | null> {
    const c = chat.value;
    if (!c) return { code: "network", message: "" };
    const name = member(peerId)?.displayName ?? `#${peerId}`;
    try {
      const ack = await c.transfer({ peerId, toAgentId, ...(note.trim() ? { note: note.trim() } : {}) });
      if (depart(peerId, ack.conversationId)) {
        departure.value = { kind: "transferred", name, to: toAgentId ? (agentNames.value[toAgentId] ?? null) : null };
      }
      return null;
    } catch (e) {
      return failureOf(e);
    }
  }

  /** Available or away; the server keeps it, and my other tabs follow. */
  async function setStatus(next: AgentStatus) {
    const c = chat.value;
    if (!c || statusBusy.value) return;
    const before = status.value;
    status.value = next;
    statusBusy.value = true;
    try {
      status.value = await c.setStatus(next);
    } catch (e) {
      status.value = before;
      actionError.value = { action: "status", failure: failureOf(e) };
    } finally {
      statusBusy.value = false;
    }
  }

  /** The agents a conversation can go to, with their status and load (also: my own status). */
  async function loadAgents(): Promise<AvailableAgent[]> {
    const list = (await api.availableAgents(session.token).catch(() => null))?.agents;
    if (!list) return agents.value;
    agents.value = list;
    const names = { ...agentNames.value };
    for (const a of list) names[a.id] = a.displayName;
    agentNames.value = names;
    const mine = list.find((a) => a.id === me.id);
    if (mine && !statusBusy.value) status.value = mine.status;
    return list;
  }

  function mergeNotes(current: readonly Note[], incoming: readonly Note[]): Note[] {
    const byId = new Map(current.map((n) => [n.id, n]));
    for (const n of incoming) byId.set(n.id, n);
    return [...byId.values()].sort((a, b) => Date.parse(a.timestamp) - Date.parse(b.timestamp) || Number(a.id) - Number(b.id));
  }

  function retry(peerId: Id, key: string) {
    conv(peerId).engine.retry(key);
  }

  function loadOlder(peerId: Id) {
    return conv(peerId).engine.loadOlder();
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
    if (v && activeId.value) void conversations[activeId.value]?.engine.markRead();
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
    status,
    statusBusy,
    agents,
    agentNames,
    uploading,
    problems,
    busy,
    departure,
    actionError,
    connect,
    select,
    send,
    sendFile,
    addNote,
    resolve,
    transfer,
    setStatus,
    loadAgents,
    dismissProblem: (peerId: Id) => delete problems[peerId],
    retry,
    loadOlder,
    typingInput,
    typingStop: (peerId: Id) => typingSenders.get(peerId)?.stop(),
    refreshMembers,
    close() {
      typingSenders.forEach((s) => s.stop());
      for (const cv of Object.values(conversations)) cv.engine.close();
      memberLists.cancel();
      chat.value?.close();
      chat.value = null;
    },
  };
}
