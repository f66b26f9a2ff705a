// Test double of kefu for the chat stores: one customer and one agent, their conversations, and the
// events the real server answers, kept just as far as the stores rely on them (docs/protocol.md).
// A test stores messages "while a client is away", holds answers back to force an order, and reads
// what each client asked for. As on the server, a login starts nothing: the customer's first message
// (with no open conversation) starts one, which goes to the agent or waits in the queue.
import type { HistoryPayload, Id, Member, Message, PrivateMessageAck, PrivateMessagePayload } from "../protocol";
import { FakeSocket } from "./fakeSocket";

export const AGENT: Id = "3";
export const CUSTOMER: Id = "12";

interface Hold {
  release: () => void;
  released: Promise<void>;
}

export class FakeChatServer {
  messages: Message[] = [];
  /** The customer's latest conversation, which `history` without `conversationId` reads; null: none yet. */
  conversationId: Id | null = "8";
  /** Resolved conversations: the customer's next message starts a new one. */
  resolved = new Set<Id>();
  /** The latest conversation waits in the queue (no agent). */
  queued = false;
  /** Where a conversation the customer's first message starts goes. */
  route: "agent" | "queue" = "agent";
  /** When the customer hears of its new conversation's agent or place: before the ack (as the server does), after it, or never. */
  announce: "before" | "after" | "never" = "before";
  /** How far each side has read, by seq, per conversation. */
  readSeq: Record<string, number> = {};
  /** Every `read` a client sent, in order: the seq it covered and the seqs the reader's screen held. */
  reads: Array<{ readerId: Id; seq: number; held: number[] }> = [];
  /** The seqs a client's screen holds now, for `reads`. */
  screen: (userId: Id) => number[] = () => [];
  /** The offline path's HTTP side (issue 15): what `fakeFetch` answers, and what it was sent. */
  http = {
    availability: null as unknown,
    contact: { name: null, email: null, phone: null } as unknown,
    /** Resume tokens that work; any other is `invalid_token`. */
    resumeTokens: new Set<string>(),
    transcriptTo: "ann@example.com" as string | null,
    requests: [] as Array<{ method: string; url: string; body: unknown }>,
  };
  private sockets = new Map<Id, FakeSocket>();
  private holds = new Map<string, Hold[]>();
  private failures = new Map<string, string[]>();
  private nextId = 100;
  private nextConversation = 9;
  private clock = Date.UTC(2026, 10, 26, 4, 0, 0);

  /** The socket a client of `userId` gets (one per user). */
  socketFor(userId: Id): FakeSocket {
    const s = new FakeSocket((event, payload) => this.answer(userId, event, payload));
    this.sockets.set(userId, s);
    return s;
  }

  /** Stores a message, as a send from a client that is not under test does; delivered with `deliver`. */
  store(senderId: Id, content: string, clientMsgId: string | null = null, conversationId = this.latest()): Message {
    const seq = this.messages.filter((m) => m.conversationId === conversationId).length + 1;
    const m: Message = {
      id: String(this.nextId++),
      seq,
      conversationId,
      senderId,
      receiverId: senderId === AGENT ? CUSTOMER : this.queued && conversationId === this.conversationId ? null : AGENT,
      kind: "text",
      content,
      timestamp: new Date((this.clock += 1000)).toISOString(),
      clientMsgId,
    };
    this.messages.push(m);
    return m;
  }

  /** The customer's latest conversation; a test that stores a message in none has a bug. */
  private latest(): Id {
    if (this.conversationId === null) throw new Error("the customer has no conversation yet");
    return this.conversationId;
  }

  /** An agent takes the waiting conversation: `conversation_assigned` to both sides. */
  assign() {
    const conversationId = this.latest();
    this.queued = false;
    const e = {
      conversationId,
      customerId: CUSTOMER,
      agentId: AGENT,
      agent: { id: AGENT, role: "agent", username: "gina", displayName: "Gina" },
    };
    for (const id of [CUSTOMER, AGENT]) {
      const s = this.sockets.get(id);
      if (s?.connected) s.fire("conversation_assigned", e);
    }
  }

  /** `queue_position` to the customer: first in line. */
  tellPlace() {
    const s = this.sockets.get(CUSTOMER);
    if (s?.connected) s.fire("queue_position", { conversationId: this.latest(), position: 1, estimatedWaitSeconds: 300 });
  }

  /** The agent resolves the latest conversation: `conversation_resolved` to both sides. */
  resolve() {
    const conversationId = this.latest();
    this.resolved.add(conversationId);
    for (const id of [CUSTOMER, AGENT]) {
      const s = this.sockets.get(id);
      if (s?.connected) s.fire("conversation_resolved", { conversationId, customerId: CUSTOMER, agentId: AGENT });
    }
  }

  /** `new_private_message` to the receiver, if its client is connected. */
  deliver(m: Message) {
    const s = m.receiverId ? this.sockets.get(m.receiverId) : undefined;
    if (s?.connected) s.fire("new_private_message", m);
  }

  /** The next answer to `event` waits until the returned function is called. */
  hold(event: string): () => void {
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    this.holds.set(event, [...(this.holds.get(event) ?? []), { release, released }]);
    return release;
  }

  /** Reads that covered a message of the other side that the reader's screen did not hold. */
  readsBeyondScreen(): Array<{ readerId: Id; seq: number; missing: number[] }> {
    return this.reads
      .map((r) => ({
        readerId: r.readerId,
        seq: r.seq,
        missing: this.of(this.conversationId)
          .filter((m) => m.senderId !== r.readerId && m.seq <= r.seq && !r.held.includes(m.seq))
          .map((m) => m.seq),
      }))
      .filter((r) => r.missing.length > 0);
  }

  /**
   * The next `event` fails with this error code; "timeout" answers nothing, and "lost" does what was
   * asked (e.g. stores the message) but its answer never arrives.
   */
  failNext(event: string, code: string) {
    this.failures.set(event, [...(this.failures.get(event) ?? []), code]);
  }

  private of(conversationId: Id | null): Message[] {
    return this.messages.filter((m) => m.conversationId === conversationId);
  }

  private peerOf(userId: Id): Id {
    return userId === AGENT ? CUSTOMER : AGENT;
  }

  /** The customer's open conversation with its agent, if it has one. */
  private open(): Id | null {
    const id = this.conversationId;
    return id !== null && !this.resolved.has(id) && !this.queued ? id : null;
  }

  private members(userId: Id): Member[] {
    const conversationId = this.open();
    return conversationId ? [this.member(userId, conversationId)] : [];
  }

  private member(userId: Id, conversationId: Id): Member {
    const peer = this.peerOf(userId);
    const list = this.of(conversationId);
    const read = this.readSeq[`${userId}:${conversationId}`] ?? 0;
    return {
      id: peer,
      role: peer === AGENT ? "agent" : "customer",
      username: peer === AGENT ? "gina" : "ann",
      displayName: peer === AGENT ? "Gina" : "Ann",
      message_count: list.filter((m) => m.senderId === peer && m.seq > read).length,
      online: true,
      conversationId,
      lastMessage: list[list.length - 1] ?? null,
      offline: false,
      email: null,
      phone: null,
    };
  }

  private history(userId: Id, p: HistoryPayload) {
    const conversationId = p.conversationId ?? this.conversationId;
    if (conversationId === null) return { ok: true, conversationId: null, messages: [], hasMore: false, peerReadSeq: 0 };
    const all = this.of(conversationId);
    const limit = p.limit ?? 50;
    let page: Message[];
    let hasMore: boolean;
    if (p.afterSeq !== undefined) {
      const after = all.filter((m) => m.seq > p.afterSeq!);
      page = after.slice(0, limit);
      hasMore = after.length > limit;
    } else {
      const before = p.beforeId ? all.filter((m) => m.seq < (all.find((x) => x.id === p.beforeId)?.seq ?? 0)) : all;
      page = before.slice(-limit);
      hasMore = before.length > limit;
    }
    const peerReadSeq = this.readSeq[`${this.peerOf(userId)}:${conversationId}`] ?? 0;
    return { ok: true, conversationId, messages: page, hasMore, peerReadSeq };
  }

  private send(userId: Id, p: PrivateMessagePayload): PrivateMessageAck & { ok: true } {
    const same = this.messages.find((m) => m.senderId === userId && p.clientMsgId && m.clientMsgId === p.clientMsgId);
    const starts = !same && userId === CUSTOMER && (this.conversationId === null || this.resolved.has(this.conversationId));
    if (starts) {
      this.conversationId = String(this.nextConversation++);
      this.queued = this.route === "queue";
    }
    const m = same ?? this.store(userId, p.content ?? "", p.clientMsgId ?? null);
    if (!same) setTimeout(() => this.deliver(m), 0);
    const ack = {
      ok: true as const,
      id: m.id,
      seq: m.seq,
      conversationId: m.conversationId,
      createdAt: m.timestamp,
      clientMsgId: m.clientMsgId,
      duplicate: !!same,
    };
    if (!starts) return ack;
    const announce = () => (this.queued ? this.tellPlace() : this.assign());
    if (this.announce === "before") announce();
    else if (this.announce === "after") setTimeout(announce, 0);
    return { ...ack, started: { csId: this.queued ? null : AGENT, queued: this.queued } };
  }

  private read(userId: Id, p: { upToId: Id }) {
    const m = this.messages.find((x) => x.id === p.upToId);
    if (!m) return { ok: false, error: { code: "not_found", message: "" } };
    const key = `${userId}:${m.conversationId}`;
    const seq = Math.max(this.readSeq[key] ?? 0, m.seq);
    this.readSeq[key] = seq;
    this.reads.push({ readerId: userId, seq: m.seq, held: this.screen(userId) });
    const e = { readerId: userId, upToId: m.id, conversationId: m.conversationId, seq };
    setTimeout(() => {
      const s = this.sockets.get(this.peerOf(userId));
      if (s?.connected) s.fire("messages_read", e);
    }, 0);
    return { ok: true, conversationId: m.conversationId, upToId: m.id, seq };
  }

  private respond(userId: Id, event: string, payload: unknown): unknown {
    switch (event) {
      case "login":
        return userId === CUSTOMER
          ? {
              ok: true,
              csId: this.open() ? AGENT : null,
              conversationId: this.conversationId,
              queued: this.queued,
              position: this.queued ? 1 : null,
              estimatedWaitSeconds: this.queued ? 300 : null,
              ended: this.conversationId !== null && this.resolved.has(this.conversationId),
            }
          : { ok: true, csId: userId, conversationId: null, queued: false, position: null, estimatedWaitSeconds: null, ended: false };
      case "all_member":
        return { ok: true, users: this.members(userId) };
      case "history":
        return this.history(userId, payload as HistoryPayload);
      case "private_message":
        return this.send(userId, payload as PrivateMessagePayload);
      case "read":
        return this.read(userId, payload as { upToId: Id });
      case "notes":
        return { ok: true, notes: [] };
      case "queue_status":
        return this.queued
          ? { ok: true, queued: true, conversationId: this.conversationId, position: 1, estimatedWaitSeconds: 300 }
          : { ok: true, queued: false, conversationId: this.open(), position: null, estimatedWaitSeconds: null };
      default:
        return { ok: true };
    }
  }

  /** The answer is read when the request arrives; a hold delays only its delivery. */
  async answer(userId: Id, event: string, payload: unknown): Promise<unknown> {
    const failure = this.failures.get(event)?.shift();
    if (failure === "timeout") return undefined;
    if (failure && failure !== "lost") return { ok: false, error: { code: failure, message: failure } };
    const answer = this.respond(userId, event, payload);
    if (failure === "lost") return undefined;
    const hold = this.holds.get(event)?.shift();
    if (hold) await hold.released;
    return answer;
  }
}

/** `fetch` for the HTTP calls the stores make on the side: a visitor, the agents, the conversations. */
export function fakeFetch(server: FakeChatServer): typeof fetch {
  return (async (input: RequestInfo | URL, init?: RequestInit) => {
    const url = String(input);
    const method = init?.method ?? "GET";
    const body = typeof init?.body === "string" ? (JSON.parse(init.body) as unknown) : undefined;
    server.http.requests.push({ method, url, body });
    const json = (b: unknown, status = 200) => new Response(JSON.stringify(b), { status, headers: { "content-type": "application/json" } });
    const error = (status: number, code: string, message: string) => json({ error: { code, message } }, status);
    if (url === "/api/visitors/resume") {
      const token = (body as { token?: string } | undefined)?.token ?? "";
      if (!server.http.resumeTokens.has(token)) return error(401, "invalid_token", "This link has expired.");
      return json({ token: "resumed-token", user: { id: CUSTOMER, role: "customer", username: "ann", displayName: "Ann" } });
    }
    if (url === "/api/availability") return server.http.availability ? json(server.http.availability) : error(404, "not_found", "");
    if (url === "/api/me/contact") return json(server.http.contact);
    if (url === "/api/offline-messages") {
      const content = (body as { content?: string }).content ?? "";
      const starts = server.conversationId === null || server.resolved.has(server.conversationId);
      if (starts) server.conversationId = "20";
      server.queued = true;
      const m = server.store(CUSTOMER, content, (body as { clientMsgId?: string }).clientMsgId ?? null);
      return json({ conversationId: m.conversationId, message: m, place: 1 }, 201);
    }
    if (/^\/api\/conversations\/\d+\/transcript\/email$/.test(url)) {
      const to = server.http.transcriptTo;
      return to ? json({ to }, 202) : error(400, "invalid_payload", "We have no e-mail address for you.");
    }
    if (url.startsWith("/api/visitors")) {
      return json({ token: "visitor-token", user: { id: CUSTOMER, role: "customer", username: "ann", displayName: "Ann" } });
    }
    if (url.startsWith("/api/agents/available")) return json({ agents: [] });
    if (url.startsWith("/api/conversations")) {
      const ids = [...new Set(server.messages.map((m) => m.conversationId))].reverse();
      return json({
        conversations: ids.map((id) => ({
          id,
          customerId: CUSTOMER,
          agentId: AGENT,
          status: server.resolved.has(id) ? "resolved" : "open",
          createdAt: new Date(0).toISOString(),
          resolvedAt: null,
          rating: null,
        })),
      });
    }
    return new Response("{}", { status: 404 });
  }) as typeof fetch;
}
