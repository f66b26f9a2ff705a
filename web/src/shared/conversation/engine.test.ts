// The conversation engine over the real useChatSocket and a fake server, from both sides: the
// console (addressing a customer) and the customer (its own conversations).
import type { Socket } from "socket.io-client";
import { describe, expect, it } from "vitest";
import { ChatError, useChatSocket } from "../useChatSocket";
import { AGENT, CUSTOMER, FakeChatServer } from "../testing/fakeServer";
import { flush } from "../testing/fakeSocket";
import { createConversation } from "./engine";
import { customerLink, ownConversationsLink, type ConversationLink } from "./link";

type Side = "console" | "customer";

function setup(side: Side, opts: { pageSize?: number; link?: (l: ConversationLink) => ConversationLink } = {}) {
  const server = new FakeChatServer();
  const me = side === "console" ? AGENT : CUSTOMER;
  const peer = side === "console" ? CUSTOMER : AGENT;
  const socket = server.socketFor(me);
  const view = { visible: true };
  const base = side === "console" ? customerLink(() => chat, "t", peer) : ownConversationsLink(() => chat, "t");
  const engine = createConversation({
    me,
    link: opts.link ? opts.link(base) : base,
    visible: () => view.visible,
    receiverId: () => peer,
    ...(opts.pageSize ? { pageSize: opts.pageSize } : {}),
  });
  const chat = useChatSocket({
    token: "t",
    userId: me,
    handlers: { message: (m) => engine.receive(m) },
    connect: () => socket as unknown as Socket,
    requestTimeoutMs: 200,
  });
  const held = () => engine.messages.value.flatMap((m) => (m.seq === null ? [] : [m.seq]));
  server.screen = () => held();
  const fetchedAfter = () =>
    socket.emitted.filter((e) => e.event === "history" && (e.payload as { afterSeq?: number }).afterSeq !== undefined).map((e) => (e.payload as { afterSeq: number }).afterSeq);
  /** Connected, with the latest page loaded; `unread` is what the server counts unread. */
  async function open(unread = 0) {
    chat.start();
    await engine.load(() => unread);
    await flush();
  }
  return { server, socket, chat, engine, me, peer, view, held, fetchedAfter, open };
}

describe.each<Side>(["console", "customer"])("the conversation engine (%s)", (side) => {
  it("shows my message at once, then as the server stored it", async () => {
    const t = setup(side);
    t.server.store(t.peer, "hi");
    await t.open();
    t.engine.send("hello");
    const local = t.engine.messages.value.at(-1)!;
    expect(local).toMatchObject({ content: "hello", delivery: "sending", seq: null });
    await flush();
    expect(t.engine.messages.value.at(-1)).toMatchObject({ key: local.key, delivery: "sent", seq: 2, id: t.server.messages[1]!.id });
  });

  it("sends a failed message again with the same clientMsgId, and the server stores it once", async () => {
    const t = setup(side);
    await t.open();
    // Stored, but the ack never came: the message shows as failed.
    t.server.failNext("private_message", "lost");
    t.engine.send("hello");
    await flush(20);
    const failed = t.engine.messages.value.at(-1)!;
    expect(failed.delivery).toBe("failed");
    expect(t.engine.state.failures[failed.key]?.code).toBe("timeout");
    t.engine.retry(failed.key);
    expect(t.engine.messages.value.at(-1)!.delivery).toBe("sending");
    await flush();
    expect(t.engine.messages.value.map((m) => [m.content, m.delivery])).toEqual([["hello", "sent"]]);
    expect(t.engine.state.failures).toEqual({});
    expect(t.server.messages.filter((m) => m.content === "hello")).toHaveLength(1);
    const sends = t.socket.emitted.filter((e) => e.event === "private_message").map((e) => (e.payload as { clientMsgId: string }).clientMsgId);
    expect(sends).toHaveLength(2);
    expect(sends[0]).toBe(sends[1]);
  });

  it("says why a message was refused", async () => {
    const t = setup(side);
    await t.open();
    t.server.failNext("private_message", "rate_limited");
    t.engine.send("hello");
    await flush();
    const m = t.engine.messages.value.at(-1)!;
    expect(m.delivery).toBe("failed");
    expect(t.engine.state.failures[m.key]?.code).toBe("rate_limited");
  });

  it("catches up from where it holds every message, not from its own newer ack", async () => {
    const t = setup(side);
    t.server.store(t.me, "one");
    t.server.store(t.peer, "two");
    await t.open();
    // Stored while this client was away; then its own message is acked first, as seq 4.
    t.server.store(t.peer, "missed");
    t.engine.send("mine");
    await flush();
    await t.engine.catchUp();
    await flush();
    expect(t.held()).toEqual([1, 2, 3, 4]);
    expect(t.fetchedAfter()[0]).toBe(2);
  });

  it("catches up from before a hole whose fill failed", async () => {
    const t = setup(side);
    t.server.store(t.peer, "one");
    await t.open();
    t.server.store(t.peer, "missed");
    // The fill that my ack starts gets no answer (the connection dropped): the hole stays.
    t.server.failNext("history", "timeout");
    t.engine.send("mine");
    await flush(20);
    expect(t.held()).toEqual([1, 3]);
    await t.engine.catchUp();
    expect(t.held()).toEqual([1, 2, 3]);
    expect(t.fetchedAfter()).toEqual([1, 1]);
  });

  it("fills the hole its own ack reveals, without waiting for a catch-up", async () => {
    const t = setup(side);
    t.server.store(t.peer, "one");
    await t.open();
    t.server.store(t.peer, "missed");
    t.engine.send("mine");
    await flush(20);
    expect(t.held()).toEqual([1, 2, 3]);
    expect(t.fetchedAfter()).toEqual([1]);
  });

  it("fills the hole between the latest page and a live message that came while it loaded", async () => {
    const t = setup(side);
    t.server.store(t.peer, "one");
    t.chat.start();
    await flush();
    const slowPage = t.server.hold("history");
    const loading = t.engine.load(() => 0);
    await flush();
    t.server.store(t.peer, "not delivered");
    t.server.deliver(t.server.store(t.peer, "live"));
    await flush();
    slowPage();
    await loading;
    await flush(20);
    expect(t.held()).toEqual([1, 2, 3]);
    expect(t.fetchedAfter()).toEqual([1]);
  });

  it("fills a hole that a page of the conversation leaves", async () => {
    const t = setup(side);
    t.server.store(t.peer, "one");
    await t.open();
    for (const c of ["two", "three", "four"]) t.server.store(t.peer, c);
    const page = await t.chat.history({ conversationId: "8", limit: 1 });
    t.engine.takePage(page);
    await flush(20);
    expect(t.held()).toEqual([1, 2, 3, 4]);
    expect(t.fetchedAfter()).toEqual([1]);
  });

  it("fetches once for a burst of live messages beyond a hole", async () => {
    const t = setup(side);
    t.server.store(t.peer, "one");
    await t.open();
    t.server.store(t.peer, "missed");
    for (const c of ["a", "b", "c"]) t.server.deliver(t.server.store(t.peer, c));
    await flush(20);
    expect(t.held()).toEqual([1, 2, 3, 4, 5]);
    expect(t.fetchedAfter()).toEqual([1]);
  });

  it("never marks read past a hole, and reads on once it is filled", async () => {
    const t = setup(side);
    t.server.store(t.peer, "one");
    await t.open(1);
    expect(t.server.reads.map((r) => r.seq)).toEqual([1]);
    t.server.store(t.peer, "missed");
    const slowFill = t.server.hold("history");
    t.server.deliver(t.server.store(t.peer, "live"));
    await flush(20);
    expect(t.held()).toEqual([1, 3]);
    expect(t.server.reads.map((r) => r.seq)).toEqual([1]);
    slowFill();
    await flush(20);
    expect(t.server.reads.map((r) => r.seq)).toEqual([1, 3]);
    expect(t.server.readsBeyondScreen()).toEqual([]);
  });

  it("marks read only while the user looks", async () => {
    const t = setup(side);
    t.view.visible = false;
    t.server.store(t.peer, "one");
    await t.open(1);
    t.server.deliver(t.server.store(t.peer, "two"));
    await flush();
    expect(t.server.reads).toEqual([]);
    expect(t.engine.unread()).toBe(2);
    t.view.visible = true;
    await t.engine.markRead();
    expect(t.server.reads.map((r) => r.seq)).toEqual([2]);
    expect(t.engine.unread()).toBe(0);
  });

  it("does not ask again and again for a seq the server does not have", async () => {
    const t = setup(side);
    t.server.store(t.peer, "one");
    await t.open();
    t.server.store(t.peer, "gone");
    const live = t.server.store(t.peer, "live");
    t.server.messages = t.server.messages.filter((m) => m.content !== "gone");
    t.server.deliver(live);
    await flush(20);
    expect(t.held()).toEqual([1, 3]);
    expect(t.fetchedAfter()).toEqual([1]);
  });

  it("loads older pages down to the first message without seeing a hole", async () => {
    const t = setup(side, { pageSize: 3 });
    for (let i = 1; i <= 7; i++) t.server.store(t.peer, `m${i}`);
    await t.open();
    expect(t.held()).toEqual([5, 6, 7]);
    await t.engine.loadOlder();
    await t.engine.loadOlder();
    expect(t.held()).toEqual([1, 2, 3, 4, 5, 6, 7]);
    expect(t.engine.state.segments[0]).toMatchObject({ floor: 0, hasMoreBefore: false });
    t.server.deliver(t.server.store(t.peer, "m8"));
    await flush(20);
    expect(t.fetchedAfter()).toEqual([]);
  });

  it("uploads a file, then sends it; a failed upload sends nothing", async () => {
    const attachment = { id: "77", name: "cat.png", mime: "image/png", size: 10, url: "/api/attachments/77" };
    let fail = false;
    const t = setup(side, {
      link: (l) => ({
        ...l,
        upload: async () => {
          if (fail) throw new ChatError("too_large", "too large");
          return attachment;
        },
      }),
    });
    await t.open();
    const file = new File(["x"], "cat.png", { type: "image/png" });
    expect(await t.engine.sendFile(file)).toBeNull();
    await flush();
    expect(t.engine.messages.value.at(-1)).toMatchObject({ kind: "image", attachment, delivery: "sent" });
    expect(t.socket.emitted.find((e) => e.event === "private_message")?.payload).toMatchObject({ attachmentId: "77" });
    fail = true;
    expect(await t.engine.sendFile(file)).toMatchObject({ code: "too_large" });
    expect(t.engine.state.uploading).toBeNull();
    expect(t.socket.emitted.filter((e) => e.event === "private_message")).toHaveLength(1);
  });
});
