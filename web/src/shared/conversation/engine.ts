// One conversation engine: the messages with one peer as this client holds them (a segment per
// server conversation, see segments.ts), and what keeps them true: the outbox (a message shows at
// once, is delivered, then confirmed or failed, and a retry reuses its clientMsgId so the server
// stores it once), the catch-up after a reconnect, filling holes in the seqs, read marking while the
// user looks, older pages and file sending.
//
// It never skips a seq: its catch-up starts at the contiguous point (seqs.ts), and any message held
// beyond a hole, whether it came live, as its own ack or in a page, makes it fetch what is missing.
// It never marks read past a hole either. Both hold whatever order the answers come in.
import { computed, shallowReactive } from "vue";
import { createCoalescer, createKeyedCoalescer } from "../coalesce";
import { failureOf, type Failure } from "../errors";
import { newClientMsgId } from "../format";
import { fromServer, localMessage, oldestStored, readSeqFromUnread, setDelivery, type ChatMessage } from "../messages";
import type { Attachment, HistoryAck, Id, Message, MessagesRead, PrivateMessageAck } from "../protocol";
import type { ConversationLink } from "./link";
import { readTarget } from "./seqs";
import {
  addBefore,
  addLocal,
  addOlder,
  addPage,
  addStored,
  allMessages,
  confirmLocal,
  contiguousOf,
  current,
  holeIn,
  segmentOf,
  segmentOfPage,
  unreadCount,
  updateLocal,
  updateSegment,
  withLatestPage,
  type Segment,
} from "./segments";

export interface ConversationOptions {
  me: Id;
  link: ConversationLink;
  /** The user sees this conversation now: only then is it marked read. */
  visible: () => boolean;
  /** Who a message I write goes to, as far as known (the server says for sure). */
  receiverId: () => Id | null;
  /** Messages the server sent, merged: the latest page, or what a catch-up or a hole's fill found. */
  fetched?: (messages: readonly Message[], kind: "latest" | "missed") => void;
  /** My read position was confirmed or moved. */
  read?: () => void;
  /** A message I wrote was added (before it is delivered). */
  wrote?: (local: ChatMessage) => void;
  /**
   * The server stored a message I wrote (it is in its conversation by now). The ack of a customer's
   * message that started a conversation says where that conversation went (`started`).
   */
  sent?: (ack: PrivateMessageAck) => void;
  /** Messages per page when loading and scrolling up. */
  pageSize?: number;
}

export interface ConversationState {
  /** Oldest conversation first; the last is the one the user writes in. */
  segments: Segment[];
  /** The latest page is in: from now on every merge is checked for holes. */
  loaded: boolean;
  loading: boolean;
  loadingOlder: boolean;
  /** Why each failed message of mine failed, by key. */
  failures: Record<string, Failure>;
  /** The name of the file being uploaded. */
  uploading: string | null;
}

export type ConversationEngine = ReturnType<typeof createConversation>;

const PAGE = 50;

/** `initial`: what is known before the first page (the console knows the conversation's id). */
export function createConversation(opts: ConversationOptions, initial: Segment[] = []) {
  const state = shallowReactive<ConversationState>({
    segments: initial,
    loaded: false,
    loading: false,
    loadingOlder: false,
    failures: {},
    uploading: null,
  });
  const messages = computed(() => allMessages(state.segments));
  const open = computed(() => current(state.segments));
  const pageSize = opts.pageSize ?? PAGE;
  let closed = false;

  const segment = (id: Id | null) => segmentOf(state.segments, id);
  const patch = (id: Id | null, p: Partial<Segment>) => (state.segments = updateSegment(state.segments, id, p));

  // Fetches everything after the contiguous point of one conversation: to fill a hole, or (forced)
  // to catch up. One fetch at a time per conversation; what is asked meanwhile runs once after it.
  const fills = createKeyedCoalescer<Id, boolean>(fill, { merge: (a, b) => a || b });

  async function fill(conversationId: Id, force: boolean) {
    const s = segment(conversationId);
    if (closed || !s || !(force || holeIn(s))) return;
    const from = contiguousOf(s);
    const missed = await opts.link.after(conversationId, from);
    if (closed) return;
    const id = missed.conversationId ?? conversationId;
    state.segments = addStored(state.segments, id, missed.messages.map(fromServer));
    patch(id, { peerReadSeq: Math.max(segment(id)?.peerReadSeq ?? 0, missed.peerReadSeq) });
    opts.fetched?.(missed.messages, "missed");
    const now = segment(id);
    // Only when that fetch got somewhere: a hole the server cannot fill is not asked for in a loop.
    if (now && holeIn(now) && contiguousOf(now) > from) void fills.request(id, false);
    void markRead();
  }

  function fillHoles(conversationId: Id) {
    const s = segment(conversationId);
    if (state.loaded && s && holeIn(s)) void fills.request(conversationId, false);
  }

  // One `read` at a time; a message that arrives meanwhile is read by the one run after it.
  const reads = createCoalescer<void>(async () => {
    const s = open.value;
    if (closed || !state.loaded || !s || s.resolved || !opts.visible()) return;
    const upTo = readTarget(s.messages, opts.me, s.floor);
    if (upTo?.seq != null && upTo.seq > s.myReadSeq) {
      const ack = await opts.link.markRead(upTo);
      if (closed) return;
      const now = segment(ack.conversationId);
      if (now) patch(ack.conversationId, { myReadSeq: Math.max(now.myReadSeq, ack.seq) });
    }
    opts.read?.();
  });

  /** Marks read what the user sees, if it sees it; a failure is retried by the next message or look. */
  function markRead(): Promise<void> {
    return opts.visible() ? reads.request() : Promise.resolve();
  }

  /**
   * The latest page, with the server's count of my unread messages. `countedUpTo`, when known, is the
   * conversation's last seq when that count was taken: what came after it is unread too.
   */
  function takeLatest(page: HistoryAck, hints: { unread: number; countedUpTo?: number; resolved?: boolean }) {
    const id = page.conversationId;
    if (id) {
      const segs = withLatestPage(state.segments, segmentOfPage(page, { resolved: hints.resolved ?? false }));
      // The protocol tells how many are unread, not up to where.
      const upTo = hints.countedUpTo;
      const counted = upTo === undefined ? segs[0]!.messages : segs[0]!.messages.filter((m) => m.seq !== null && m.seq <= upTo);
      segs[0] = { ...segs[0]!, myReadSeq: readSeqFromUnread(counted, opts.me, hints.unread) };
      state.segments = segs;
    }
    state.loaded = true;
    opts.fetched?.(page.messages, "latest");
    if (id) fillHoles(id);
    void markRead();
  }

  async function deliver(local: ChatMessage) {
    try {
      const ack = await opts.link.send(local);
      if (closed) return;
      state.segments = confirmLocal(state.segments, local, ack);
      fillHoles(ack.conversationId);
      opts.sent?.(ack);
    } catch (e) {
      if (closed) return;
      state.failures = { ...state.failures, [local.key]: failureOf(e) };
      state.segments = updateLocal(state.segments, local.key, (l) => setDelivery(l, local.key, "failed"));
    }
  }

  function write(content: string, attachment?: Attachment) {
    const local = localMessage({
      senderId: opts.me,
      receiverId: opts.receiverId(),
      content,
      clientMsgId: newClientMsgId(),
      now: new Date(),
      ...(attachment ? { attachment } : {}),
    });
    state.segments = addLocal(state.segments, local);
    opts.wrote?.(local);
    void deliver(local);
  }

  return {
    state,
    /** Everything shown, oldest conversation first. */
    messages,
    /** The conversation the user writes in. */
    current: open,

    /** The latest page, once (the console, when a conversation is first opened). */
    async load(unread: () => number): Promise<void> {
      if (state.loaded || state.loading) return;
      state.loading = true;
      try {
        const page = await opts.link.latest(pageSize);
        if (!closed) takeLatest(page, { unread: unread() });
      } finally {
        state.loading = false;
      }
    },

    /** The latest page fetched by the caller (the customer, with its list of conversations). */
    takeLatest,

    /** A page of a conversation started elsewhere (another tab): it comes after the others. */
    takePage(page: HistoryAck) {
      state.segments = addPage(state.segments, page);
      if (page.conversationId) fillHoles(page.conversationId);
    },

    /** An older, ended conversation, above the ones shown. */
    addOlderConversation(page: HistoryAck, resolved: boolean) {
      const last = page.messages[page.messages.length - 1];
      state.segments = addOlder(state.segments, segmentOfPage(page, { resolved, myReadSeq: last?.seq ?? 0 }));
    },

    /** After a reconnect or the server's `resync`: whatever came after the contiguous point. */
    async catchUp(): Promise<void> {
      const id = open.value?.conversationId;
      if (state.loaded && id) await fills.request(id, true);
    },

    /** A live message. */
    receive(m: Message) {
      state.segments = addStored(state.segments, m.conversationId, [fromServer(m)]);
      fillHoles(m.conversationId);
      if (m.senderId !== opts.me) void markRead();
    },

    /** `messages_read`: the peer's read position, or mine from another tab. False: not shown here. */
    readBy(e: MessagesRead): boolean {
      // Before the first page (or ack) names it, the only conversation held has no id yet.
      const s = segment(e.conversationId) ?? (state.segments.length === 1 ? segment(null) : undefined);
      if (!s) return false;
      const seqs = e.readerId === opts.me ? { myReadSeq: Math.max(s.myReadSeq, e.seq) } : { peerReadSeq: Math.max(s.peerReadSeq, e.seq) };
      patch(s.conversationId, seqs);
      return true;
    },

    /** My read position from the server's unread count of the open conversation. */
    readFromUnread(unread: number) {
      const s = open.value;
      if (s) patch(s.conversationId, { myReadSeq: Math.max(s.myReadSeq, readSeqFromUnread(s.messages, opts.me, unread)) });
    },

    setResolved(conversationId: Id, resolved: boolean) {
      patch(conversationId, { resolved });
    },

    /** Messages from the peer I have not read (only the open conversation can have any). */
    unread: () => unreadCount(state.segments, opts.me),

    markRead,

    send(content: string) {
      if (content.trim()) write(content);
    },

    /** Uploads a file, then sends it. The failure of the upload, if it failed. */
    async sendFile(file: File): Promise<Failure | null> {
      if (state.uploading) return null;
      state.uploading = file.name;
      try {
        write("", await opts.link.upload(file));
        return null;
      } catch (e) {
        return failureOf(e);
      } finally {
        state.uploading = null;
      }
    },

    /** Sends a failed message again, with the same clientMsgId. */
    retry(key: string) {
      const m = messages.value.find((x) => x.key === key && x.delivery === "failed");
      if (!m) return;
      const rest = { ...state.failures };
      delete rest[key];
      state.failures = rest;
      state.segments = updateLocal(state.segments, key, (l) => setDelivery(l, key, "sending"));
      void deliver({ ...m, delivery: "sending" });
    },

    /** The page before the oldest message of the oldest conversation shown. */
    async loadOlder(): Promise<void> {
      const first = state.segments[0];
      const oldest = first ? oldestStored(first.messages) : undefined;
      if (!first?.hasMoreBefore || !oldest?.id || state.loadingOlder) return;
      state.loadingOlder = true;
      try {
        const page = await opts.link.before(first.conversationId, oldest.id, pageSize);
        if (!closed) state.segments = addBefore(state.segments, first.conversationId, page);
      } catch {
        // Scrolling up again retries.
      } finally {
        state.loadingOlder = false;
      }
    },

    close() {
      closed = true;
      fills.cancel();
      reads.cancel();
    },
  };
}
