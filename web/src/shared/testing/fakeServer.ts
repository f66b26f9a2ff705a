// Test double of kefu for the chat stores: one customer and one agent, their conversations, and the
// events the real server answers, kept just as far as the stores rely on them (docs/protocol.md).
// A test stores messages "while a client is away", holds answers back to force an order, and reads
// what each client asked for.
import type { HistoryPayload, Id, Member, Message, PrivateMessagePayload } from "../protocol";
import { FakeSocket } from "./fakeSocket";

export const AGENT: Id = "3";
export const CUSTOMER: Id = "12";

interface Hold {
  release: () => void;
  released: Promise<void>;
}

export class FakeChatServer {
  messages: Message[] = [];
  /** The conversation a customer's `history` without `conversationId` reads: its latest. */
  conversationId: Id = "8";
  /** How far each side has read, by seq, per conversation. */
  readSeq: Record<string, number> = {};
  /** Every `read` a client sent, in order: the seq it covered and the seqs the reader's screen held. */
  reads: Array<{ readerId: Id; seq: number; held: number[] }> = [];
  /** The seqs a client's screen holds now, for `reads`. */
  screen: (userId: Id) => number[] = () => [];
  private sockets = new Map<Id, FakeSocket>();
  private holds = new Map<string, Hold[]>();
  private failures = new Map<string, string[]>();
  private nextId = 100;
  private clock = Date.UTC(2026, 10, 26, 4, 0, 0);

  /** The socket a client of `userId` gets (one per user). */
  socketFor(userId: Id): FakeSocket {
    const s = new FakeSocket((event, payload) => this.answer(userId, event, payload));
    this.sockets.set(userId, s);
    return s;
  }

  /** Stores a message, as a send from a client that is not under test does; delivered with `deliver`. */
  store(senderId: Id, content: string, clientMsgId: string | null = null, conversationId = this.conversationId): Message {
    const seq = this.messages.filter((m) => m.conversationId === conversationId).length + 1;
    const m: Message = {
      id: String(this.nextId++),
      seq,
      conversationId,
      senderId,
      receiverId: senderId === AGENT ? CUSTOMER : AGENT,
      kind: "text",
      content,
      timestamp: new Date((this.clock += 1000)).toISOString(),
      clientMsgId,
    };
    this.messages.push(m);
    return m;
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

  private of(conversationId: Id): Message[] {
    return this.messages.filter((m) => m.conversationId === conversationId);
  }

  private peerOf(userId: Id): Id {
    return userId === AGENT ? CUSTOMER : AGENT;
  }

  private member(userId: Id): Member {
    const peer = this.peerOf(userId);
    const list = this.of(this.conversationId);
    const read = this.readSeq[`${userId}:${this.conversationId}`] ?? 0;
    return {
      id: peer,
      role: peer === AGENT ? "agent" : "customer",
      username: peer === AGENT ? "gina" : "ann",
      displayName: peer === AGENT ? "Gina" : "Ann",
      message_count: list.filter((m) => m.senderId === peer && m.seq > read).length,
      online: true,
      conversationId: this.conversationId,
      lastMessage: list[list.length - 1] ?? null,
    };
  }

  private history(userId: Id, p: HistoryPayload) {
    const conversationId = p.conversationId ?? this.conversationId;
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

  private send(userId: Id, p: PrivateMessagePayload) {
    const same = this.messages.find((m) => m.senderId === userId && p.clientMsgId && m.clientMsgId === p.clientMsgId);
    const m = same ?? this.store(userId, p.content ?? "", p.clientMsgId ?? null);
    if (!same) setTimeout(() => this.deliver(m), 0);
    return { ok: true, id: m.id, seq: m.seq, conversationId: m.conversationId, createdAt: m.timestamp, clientMsgId: m.clientMsgId, duplicate: !!same };
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
        return { ok: true, csId: userId === CUSTOMER ? AGENT : null, conversationId: this.conversationId, queued: false };
      case "all_member":
        return { ok: true, users: [this.member(userId)] };
      case "history":
        return this.history(userId, payload as HistoryPayload);
      case "private_message":
        return this.send(userId, payload as PrivateMessagePayload);
      case "read":
        return this.read(userId, payload as { upToId: Id });
      case "notes":
        return { ok: true, notes: [] };
      case "queue_status":
        return { ok: true, queued: false, conversationId: this.conversationId, position: null, estimatedWaitSeconds: null };
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
  return (async (input: RequestInfo | URL) => {
    const url = String(input);
    const json = (body: unknown) => new Response(JSON.stringify(body), { status: 200, headers: { "content-type": "application/json" } });
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
          status: id === server.conversationId ? "open" : "resolved",
          createdAt: new Date(0).toISOString(),
          resolvedAt: null,
          rating: null,
        })),
      });
    }
    return new Response("{}", { status: 404 });
  }) as typeof fetch;
}
