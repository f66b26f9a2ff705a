// The one place that talks Socket.IO: connection, login on every (re)connect, typed requests with
// acks and timeouts, and resync after a reconnect or when the server asks for it (`resync`). Components use the stores built on it, never the
// socket itself.
import { io, type Socket } from "socket.io-client";
import { readonly, ref } from "vue";
import { createCoalescer } from "./coalesce";
import type {
  Ack,
  AgentStatus,
  AgentStatusEvent,
  AllMemberAck,
  ConversationAssigned,
  ConversationQueued,
  ConversationResolved,
  ConversationTransferred,
  ErrorCode,
  HistoryAck,
  HistoryPayload,
  Id,
  LoginAck,
  Member,
  Message,
  MessagesRead,
  Note,
  NoteAck,
  NotesAck,
  PrivateMessageAck,
  PrivateMessagePayload,
  QueuePosition,
  QueueStatusAck,
  RatePayload,
  ReadAck,
  ResolveAck,
  ServerToClientEvents,
  SetStatusAck,
  TransferAck,
  TransferPayload,
  TypingEvent,
} from "./protocol";
import { HISTORY_MAX_LIMIT } from "./protocol";

export type ConnectionState =
  /** First connection, not logged in yet. */
  | "connecting"
  /** Connected and logged in. */
  | "online"
  /** Lost the connection; the client retries with backoff. */
  | "reconnecting"
  /** The browser says it has no network. */
  | "offline"
  /** The server refused the token: sign in again (or start a new visitor). */
  | "unauthorized"
  /** Closed on purpose. */
  | "closed";

/** A failed request: the server's error code, or "timeout" when no ack came in time. */
export class ChatError extends Error {
  constructor(
    readonly code: ErrorCode | "timeout",
    message: string,
  ) {
    super(message);
    this.name = "ChatError";
  }
}

export interface ChatHandlers {
  message?(m: Message): void;
  messagesRead?(e: MessagesRead): void;
  typing?(e: TypingEvent): void;
  members?(list: Member[]): void;
  onlineUsers?(ids: Id[]): void;
  presence?(userId: Id, online: boolean): void;
  assigned?(e: ConversationAssigned): void;
  /** The customer's conversation lost its agent (transferred back to the queue, agent disabled). */
  queued?(e: ConversationQueued): void;
  /** The customer's place in the queue changed. */
  queuePosition?(e: QueuePosition): void;
  resolved?(e: ConversationResolved): void;
  /** One of this agent's conversations went to another agent or back to the queue. */
  transferred?(e: ConversationTransferred): void;
  /** This agent's availability, changed from another tab or device. */
  agentStatus?(e: AgentStatusEvent): void;
  note?(n: Note): void;
  /**
   * After each successful login: the first connection (`resumed` false) and every reconnect
   * (`resumed` true), where the store fetches what it missed with {@link ChatSocket.historyAfter}.
   */
  ready?(login: LoginAck, resumed: boolean): void | Promise<void>;
  /**
   * The server says it may have missed delivering something (`resync`): fetch what a reconnect
   * fetches. Called after a random delay (many clients get `resync` at once), one call at a time,
   * and once more at most for any `resync` that came during a call.
   */
  resync?(): void | Promise<void>;
  /**
   * The server refused the token. `revoked` when it had just closed a working connection and then
   * refused the token (the account was disabled, or signed out everywhere); `expired` otherwise.
   */
  unauthorized?(reason: UnauthorizedReason): void;
}

export type UnauthorizedReason = "revoked" | "expired";

export interface ChatSocketOptions {
  token: string;
  userId: Id;
  csId?: Id;
  handlers: ChatHandlers;
  /** For tests: the socket factory. */
  connect?: (auth: { token: string }) => Socket;
  requestTimeoutMs?: number;
  /** For tests: the wait before resyncing on the server's `resync`. Default random, up to 2 s. */
  resyncDelayMs?: () => number;
}

export type ChatSocket = ReturnType<typeof useChatSocket>;

const DEFAULT_TIMEOUT_MS = 10_000;
/** Spreads the clients' resyncs after a `resync` sent to many of them at once. */
export const RESYNC_JITTER_MS = 2000;

export function useChatSocket(opts: ChatSocketOptions) {
  const state = ref<ConnectionState>("connecting");
  const timeoutMs = opts.requestTimeoutMs ?? DEFAULT_TIMEOUT_MS;
  const h = opts.handlers;
  const socket: Socket =
    opts.connect?.({ token: opts.token }) ??
    io({
      auth: { token: opts.token },
      autoConnect: false,
      reconnectionDelay: 500,
      reconnectionDelayMax: 8000,
    });

  let everReady = false;
  let closed = false;
  /** The server closed the connection on purpose and no login has succeeded since. */
  let closedByServer = false;
  /** Requests waiting for the login; messages to send also wait for the catch-up after it. */
  let readyWaiters: Array<() => void> = [];
  let sendWaiters: Array<() => void> = [];
  /** Logged in, and the store is fetching what it missed (`ready`). */
  let catchingUp = false;
  /** Counts logins, so that a catch-up cut short by a newer connection leaves that one alone. */
  let logins = 0;

  const offlineOr = (s: ConnectionState): ConnectionState =>
    typeof navigator !== "undefined" && navigator.onLine === false ? "offline" : s;

  async function login(): Promise<void> {
    try {
      const ack = await rawRequest<LoginAck>("login", { userId: opts.userId, ...(opts.csId ? { csId: opts.csId } : {}) });
      if (!socket.connected) return;
      const resumed = everReady;
      everReady = true;
      closedByServer = false;
      state.value = "online";
      release("ready");
      // What was written while away goes out after the catch-up, so that the list it joins is whole
      // first (the stores never skip a seq in either order; this keeps the order plain to see).
      const login = ++logins;
      catchingUp = true;
      try {
        await h.ready?.(ack, resumed);
      } finally {
        if (login === logins) {
          catchingUp = false;
          if (state.value === "online" && socket.connected) release("send");
        }
      }
    } catch (e) {
      if (e instanceof ChatError && (e.code === "unauthorized" || e.code === "forbidden")) {
        state.value = "unauthorized";
        socket.disconnect();
        h.unauthorized?.(closedByServer ? "revoked" : "expired");
      } else if (socket.connected && !closed) {
        // Try the login again on a fresh connection, after a pause (the database may be down).
        socket.disconnect();
        state.value = offlineOr("reconnecting");
        setTimeout(() => {
          if (!closed) socket.connect();
        }, 3000);
      }
    }
  }

  const on = <E extends keyof ServerToClientEvents>(event: E, fn: ServerToClientEvents[E]) => {
    // socket.io-client's untyped `on` takes any listener.
    socket.on(event as string, fn as (...args: unknown[]) => void);
  };

  socket.on("connect", () => {
    state.value = everReady ? "reconnecting" : "connecting";
    void login();
  });
  socket.on("disconnect", (reason) => {
    if (closed) return;
    state.value = offlineOr("reconnecting");
    // The client does not reconnect by itself after a server-side disconnect. The server does that to
    // a connection that cannot keep up (reconnect and resync) and to an account that was disabled or
    // signed out everywhere (the new handshake is then refused as unauthorized, and the user is told).
    if (reason === "io server disconnect") {
      closedByServer = true;
      socket.connect();
    }
  });
  socket.on("connect_error", (err: Error) => {
    if (err.message === "unauthorized") {
      state.value = "unauthorized";
      h.unauthorized?.(closedByServer ? "revoked" : "expired");
      return;
    }
    state.value = offlineOr(everReady ? "reconnecting" : "connecting");
  });

  on("new_private_message", (m) => h.message?.(m));
  on("messages_read", (e) => h.messagesRead?.(e));
  on("typing", (e) => h.typing?.(e));
  on("myUsersList", (list) => h.members?.(list));
  on("Online_user", (ids) => h.onlineUsers?.(ids));
  on("user_online", (id) => h.presence?.(id, true));
  on("user_offline", (id) => h.presence?.(id, false));
  on("update_member_list", (e) => h.presence?.(e.userId, e.online));
  on("conversation_assigned", (e) => h.assigned?.(e));
  on("conversation_queued", (e) => h.queued?.(e));
  on("queue_position", (e) => h.queuePosition?.(e));
  on("conversation_resolved", (e) => h.resolved?.(e));
  on("conversation_transferred", (e) => h.transferred?.(e));
  on("agent_status", (e) => h.agentStatus?.(e));
  on("new_note", (e) => {
    if (e?.note) h.note?.(e.note);
  });

  // Not logged in when the delay ends: the resync after the coming login fetches it all anyway.
  const serverResync = createCoalescer(
    async () => {
      if (state.value === "online") await h.resync?.();
    },
    { delayMs: opts.resyncDelayMs ?? (() => Math.random() * RESYNC_JITTER_MS) },
  );
  on("resync", () => void serverResync.request(undefined));

  const onOnline = () => {
    if (state.value === "offline") state.value = "reconnecting";
    if (!socket.connected && !closed && state.value !== "unauthorized") socket.connect();
  };
  const onOffline = () => {
    if (state.value !== "unauthorized" && state.value !== "closed") state.value = "offline";
  };
  if (typeof window !== "undefined") {
    window.addEventListener("online", onOnline);
    window.addEventListener("offline", onOffline);
  }

  async function rawRequest<T>(event: string, payload?: unknown, ms = timeoutMs): Promise<T> {
    let ack: Ack<T>;
    try {
      const s = socket.timeout(ms);
      ack = (payload === undefined ? await s.emitWithAck(event) : await s.emitWithAck(event, payload)) as Ack<T>;
    } catch {
      throw new ChatError("timeout", `${event}: no answer within ${ms} ms`);
    }
    if (!ack || typeof ack !== "object") throw new ChatError("internal", `${event}: malformed ack`);
    if (ack.ok) return ack;
    throw new ChatError(ack.error?.code ?? "internal", ack.error?.message ?? "");
  }

  function release(which: "ready" | "send") {
    const waiters = which === "ready" ? readyWaiters : sendWaiters;
    if (which === "ready") readyWaiters = [];
    else sendWaiters = [];
    waiters.forEach((w) => w());
  }

  /**
   * Resolves once logged in (at once if already), or rejects after `ms`. A `send` also waits for the
   * catch-up after the login, in the order the sends were made.
   */
  function whenReady(ms: number, send = false): Promise<void> {
    const waiting = send ? catchingUp || sendWaiters.length > 0 : false;
    if (state.value === "online" && socket.connected && !waiting) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        if (send) sendWaiters = sendWaiters.filter((w) => w !== done);
        else readyWaiters = readyWaiters.filter((w) => w !== done);
        reject(new ChatError("timeout", "not connected"));
      }, ms);
      const done = () => {
        clearTimeout(timer);
        resolve();
      };
      if (send) sendWaiters.push(done);
      else readyWaiters.push(done);
    });
  }

  /** A request that waits for the login of the current connection, within one overall timeout. */
  async function request<T>(event: string, payload?: unknown, send = false): Promise<T> {
    const started = Date.now();
    await whenReady(timeoutMs, send);
    return rawRequest<T>(event, payload, Math.max(1000, timeoutMs - (Date.now() - started)));
  }

  async function history(p: HistoryPayload): Promise<HistoryAck> {
    return request<HistoryAck>("history", p);
  }

  return {
    state: readonly(state),

    start() {
      closed = false;
      socket.connect();
    },

    close() {
      closed = true;
      state.value = "closed";
      serverResync.cancel();
      socket.disconnect();
      if (typeof window !== "undefined") {
        window.removeEventListener("online", onOnline);
        window.removeEventListener("offline", onOffline);
      }
    },

    sendMessage(p: PrivateMessagePayload): Promise<PrivateMessageAck> {
      return request<PrivateMessageAck>("private_message", p, true);
    },

    markRead(peerId: Id, upToId: Id): Promise<ReadAck> {
      return request<ReadAck>("read", { peerId, upToId });
    },

    /** Fire and forget; skipped while not connected (a stale "typing" is worse than none). */
    setTyping(typing: boolean, receiverId?: Id): void {
      if (state.value !== "online") return;
      rawRequest("typing", receiverId ? { receiverId, typing } : { typing }, 5000).catch(() => undefined);
    },

    async allMembers(): Promise<Member[]> {
      return (await request<AllMemberAck>("all_member")).users;
    },

    history,

    /** Agents: available (takes new customers) or away. */
    async setStatus(status: AgentStatus): Promise<AgentStatus> {
      return (await request<SetStatusAck>("set_status", { status })).status;
    },

    /** Agents: ends the conversation with this customer. */
    resolve(peerId: Id): Promise<ResolveAck> {
      return request<ResolveAck>("resolve", { peerId });
    },

    /** Agents: hands the conversation to another agent, or back to the queue (`toAgentId` null). */
    transfer(p: TransferPayload): Promise<TransferAck> {
      return request<TransferAck>("transfer", p);
    },

    /** Agents: a private note in the conversation with this customer. */
    async addNote(peerId: Id, content: string): Promise<Note> {
      return (await request<NoteAck>("note", { peerId, content })).note;
    },

    async notes(peerId: Id): Promise<Note[]> {
      return (await request<NotesAck>("notes", { peerId })).notes;
    },

    /** Customers: where the conversation stands in the queue. */
    queueStatus(): Promise<QueueStatusAck> {
      return request<QueueStatusAck>("queue_status", {});
    },

    /** Customers: rates a resolved conversation, once. */
    async rate(p: RatePayload): Promise<void> {
      await request<object>("rate", p);
    },

    /**
     * Resync: every message after `afterSeq`, page after page while the server has more, and how far
     * the peer has read (the `messages_read` sent while disconnected are lost). Used after a reconnect
     * or a `resync` so that nothing sent meanwhile is missing, and to fill a gap in the seqs.
     */
    async historyAfter(
      afterSeq: number,
      peerId?: Id,
      conversationId?: Id,
    ): Promise<{ conversationId: Id | null; messages: Message[]; peerReadSeq: number }> {
      const all: Message[] = [];
      let found: Id | null = null;
      let peerReadSeq = 0;
      let cursor = afterSeq;
      for (let page = 0; page < 1000; page++) {
        const ack = await history({
          ...(peerId ? { peerId } : {}),
          ...(conversationId ? { conversationId } : {}),
          afterSeq: cursor,
          limit: HISTORY_MAX_LIMIT,
        });
        found = ack.conversationId;
        peerReadSeq = Math.max(peerReadSeq, ack.peerReadSeq);
        all.push(...ack.messages);
        const last = ack.messages[ack.messages.length - 1];
        if (!ack.hasMore || !last || last.seq <= cursor) break;
        cursor = last.seq;
      }
      return { conversationId: found, messages: all, peerReadSeq };
    },
  };
}
