// The customer's chat over a fake server: what the customer sees after a reconnect, whatever order
// the answers come in, whether it has an open conversation (what the embedded chat tells the shop's
// page), and what its first message shows (the agent who took it, or the place in the queue).
import { afterEach, describe, expect, it, vi } from "vitest";
import { AGENT, CUSTOMER, FakeChatServer, fakeFetch } from "../../shared/testing/fakeServer";
import { flush, type FakeSocket } from "../../shared/testing/fakeSocket";
import { joinedAfter } from "./endings";
import { useCustomerChat } from "./useCustomerChat";

const sockets = vi.hoisted(() => ({ next: null as unknown }));
vi.mock("socket.io-client", () => ({ io: () => sockets.next }));

function open() {
  const server = new FakeChatServer();
  server.store(CUSTOMER, "hello");
  server.store(AGENT, "hi");
  const socket = server.socketFor(CUSTOMER);
  sockets.next = socket;
  vi.stubGlobal("fetch", fakeFetch(server));
  const chat = useCustomerChat();
  const held = () => chat.messages.value.flatMap((m) => (m.seq === null ? [] : [m.seq]));
  server.screen = () => held();
  return { server, socket, chat, held };
}

/** The chat started and read, then the connection lost. */
async function openThenLose(socket: FakeSocket, chat: ReturnType<typeof open>["chat"]) {
  chat.visible.value = true;
  await chat.start(true);
  await flush(20);
  socket.drop();
}

describe("useCustomerChat after a reconnect", () => {
  afterEach(() => vi.unstubAllGlobals());

  it("shows the agent's message stored while away when my own message's ack comes before the catch-up", async () => {
    const { server, socket, chat, held } = open();
    await openThenLose(socket, chat);
    expect(held()).toEqual([1, 2]);

    server.store(AGENT, "agent typed while down");
    // The catch-up after the login waits; my message goes out meanwhile and is acked first (seq 4).
    const release = server.hold("all_member");
    socket.connect();
    await flush();
    chat.send("visitor typed while down");
    await flush(20);
    release();
    await flush(20);
    expect(held()).toEqual([1, 2, 3, 4]);

    server.deliver(server.store(AGENT, "agent after"));
    await flush(20);
    expect(held()).toEqual([1, 2, 3, 4, 5]);
    expect(server.readsBeyondScreen()).toEqual([]);
    expect(server.reads.at(-1)).toMatchObject({ readerId: CUSTOMER, seq: 5 });
  });

  it("shows the agent's message stored while away when a message I wrote while away went out first", async () => {
    const { server, socket, chat, held } = open();
    await openThenLose(socket, chat);

    server.store(AGENT, "agent typed while down");
    chat.send("visitor typed while down");
    const release = server.hold("all_member");
    socket.connect();
    await flush(20);
    release();
    await flush(20);
    expect(held()).toEqual([1, 2, 3, 4]);

    server.deliver(server.store(AGENT, "agent after"));
    await flush(20);
    expect(held()).toEqual([1, 2, 3, 4, 5]);
    expect(server.readsBeyondScreen()).toEqual([]);
  });

  it("never marks read beyond a message it has not got yet", async () => {
    const { server, socket, chat, held } = open();
    await openThenLose(socket, chat);
    socket.connect();
    await flush(20);
    // Seq 3 was never delivered; seq 4 is, and the fetch of seq 3 takes its time.
    server.store(AGENT, "lost on the way");
    const slowFetch = server.hold("history");
    server.deliver(server.store(AGENT, "agent after"));
    await flush(20);
    expect(held()).toEqual([1, 2, 4]);
    expect(server.readsBeyondScreen()).toEqual([]);
    slowFetch();
    await flush(20);
    expect(held()).toEqual([1, 2, 3, 4]);
    expect(server.readsBeyondScreen()).toEqual([]);
    expect(server.reads.at(-1)).toMatchObject({ readerId: CUSTOMER, seq: 4 });
  });
});

describe("whether the visitor has an open conversation", () => {
  afterEach(() => vi.unstubAllGlobals());

  it("is not known before the chat starts, and false for a visitor without a session", async () => {
    const { chat } = open();
    expect(chat.openConversation.value).toBeNull();
    await chat.start(false);
    expect(chat.openConversation.value).toBe(false);
    expect(chat.phase.value).toBe("idle");
  });

  it("is true once the open conversation is loaded, and false when the agent resolves it", async () => {
    const { server, socket, chat } = open();
    await chat.start(true);
    expect(chat.openConversation.value).toBeNull();
    await flush(20);
    expect(chat.openConversation.value).toBe(true);
    socket.fire("conversation_resolved", { conversationId: server.conversationId, customerId: CUSTOMER, agentId: AGENT });
    await flush();
    expect(chat.openConversation.value).toBe(false);
  });

  it("is false when the server no longer takes the session", async () => {
    const { socket, chat } = open();
    socket.refuse = true;
    await chat.start(true);
    await flush(20);
    expect(chat.phase.value).toBe("expired");
    expect(chat.openConversation.value).toBe(false);
  });
});

describe("a visitor's first message", () => {
  afterEach(() => vi.unstubAllGlobals());

  /** A visitor who never wrote: the server holds no conversation of it. */
  function fresh() {
    const t = open();
    t.server.messages = [];
    t.server.conversationId = null;
    return t;
  }
  const place = (chat: ReturnType<typeof open>["chat"]) => ({ agent: chat.agent.value?.displayName ?? null, queued: chat.queued.value, queue: chat.queue.value });
  /** Where the line saying an agent joined goes: after the message with this content (null: on top). */
  const joinedAfterContent = (chat: ReturnType<typeof open>["chat"]) => {
    const a = chat.assigned.value;
    if (!a) return undefined;
    const key = joinedAfter(chat.segments.value, a);
    return key === null ? null : chat.messages.value.find((m) => m.key === key)?.content;
  };

  it("is awaited with no agent, no place in line and no open conversation", async () => {
    const { socket, chat } = fresh();
    await chat.start(true);
    await flush(20);
    expect(chat.loaded.value).toBe(true);
    expect(chat.messages.value).toEqual([]);
    expect(place(chat)).toEqual({ agent: null, queued: false, queue: null });
    expect(chat.assigned.value).toBeNull();
    expect(chat.openConversation.value).toBe(false);
    expect(socket.emitted.map((e) => e.event)).not.toContain("private_message");
  });

  it("starts the conversation and shows the agent who took it, after that message", async () => {
    const { server, chat } = fresh();
    await chat.start(true);
    await flush(20);
    chat.send("Where is my order?");
    await flush(20);
    expect(server.conversationId).toBe("9");
    expect(place(chat)).toEqual({ agent: "Gina", queued: false, queue: null });
    expect(chat.assigned.value).toMatchObject({ conversationId: "9", name: "Gina" });
    expect(joinedAfterContent(chat)).toBe("Where is my order?");
    expect(chat.openConversation.value).toBe(true);
    expect(chat.messages.value.map((m) => [m.content, m.conversationId, m.seq])).toEqual([["Where is my order?", "9", 1]]);
  });

  it("shows the agent from the ack alone when the assignment is heard late, in one line", async () => {
    const { server, chat } = fresh();
    server.announce = "never";
    await chat.start(true);
    await flush(20);
    chat.send("Hello?");
    await flush(20);
    expect(place(chat)).toEqual({ agent: "Gina", queued: false, queue: null });
    expect(joinedAfterContent(chat)).toBe("Hello?");
    const line = chat.assigned.value;
    // The event comes after all, once another message is stored: the line stays where it was.
    server.store(CUSTOMER, "Anyone?");
    server.assign();
    expect(chat.assigned.value).toBe(line);
  });

  it("says where the line goes whichever of the ack and the assignment comes first", async () => {
    for (const announce of ["before", "after"] as const) {
      const { server, chat } = fresh();
      server.announce = announce;
      await chat.start(true);
      await flush(20);
      const ack = server.hold("private_message");
      chat.send("First words");
      await flush();
      if (announce === "before") {
        // The ack is still on its way: the message that is starting the conversation is the one.
        expect(chat.messages.value[0]?.seq).toBeNull();
        expect(joinedAfterContent(chat)).toBe("First words");
      }
      ack();
      await flush(20);
      expect(chat.agent.value?.displayName).toBe("Gina");
      expect(joinedAfterContent(chat)).toBe("First words");
      chat.close();
    }
  });

  it("waits in the queue when no agent can take it: the place, then the agent who does", async () => {
    const { server, chat } = fresh();
    server.route = "queue";
    server.announce = "never";
    await chat.start(true);
    await flush(20);
    const ack = server.hold("private_message");
    chat.send("Is anybody there?");
    await flush();
    // Nothing is said before the server says where the conversation went.
    expect(place(chat)).toEqual({ agent: null, queued: false, queue: null });
    ack();
    await flush(20);
    // The ack says it waits; its place follows.
    expect(place(chat)).toEqual({ agent: null, queued: true, queue: { conversationId: "9", position: null, estimatedWaitSeconds: null } });
    expect(chat.openConversation.value).toBe(true);
    server.tellPlace();
    expect(chat.queue.value).toEqual({ conversationId: "9", position: 1, estimatedWaitSeconds: 300 });
    chat.send("Still here");
    await flush(20);
    server.assign();
    await flush(20);
    expect(place(chat)).toEqual({ agent: "Gina", queued: false, queue: null });
    expect(joinedAfterContent(chat)).toBe("Still here");
  });

  it("keeps the place in line that came before the ack", async () => {
    const { server, chat } = fresh();
    server.route = "queue";
    await chat.start(true);
    await flush(20);
    chat.send("Hi");
    await flush(20);
    expect(place(chat)).toEqual({ agent: null, queued: true, queue: { conversationId: "9", position: 1, estimatedWaitSeconds: 300 } });
  });

  it("after a resolve starts a new conversation, with its own line about the agent", async () => {
    const { server, chat } = open();
    await chat.start(true);
    await flush(20);
    server.resolve();
    await flush(20);
    expect(chat.ended.value?.conversationId).toBe("8");
    expect(chat.openConversation.value).toBe(false);
    expect(place(chat)).toEqual({ agent: null, queued: false, queue: null });
    chat.send("One more question");
    await flush(20);
    expect(chat.segments.value.map((s) => [s.conversationId, s.messages.map((m) => m.seq)])).toEqual([
      ["8", [1, 2]],
      ["9", [1]],
    ]);
    expect(chat.ended.value).toBeNull();
    expect(chat.openConversation.value).toBe(true);
    expect(chat.assigned.value?.conversationId).toBe("9");
    expect(joinedAfterContent(chat)).toBe("One more question");
  });

  it("goes before a message still being sent when a waiting conversation is taken", async () => {
    const { server, chat } = open();
    server.queued = true;
    await chat.start(true);
    await flush(20);
    expect(place(chat)).toEqual({ agent: null, queued: true, queue: { conversationId: "8", position: 1, estimatedWaitSeconds: 300 } });
    server.hold("private_message");
    chat.send("still on its way");
    await flush();
    server.assign();
    expect(joinedAfterContent(chat)).toBe("hi");
    expect(chat.messages.value.map((m) => m.content)).toEqual(["hello", "hi", "still on its way"]);
  });
});

describe("the unread count of a chat in the background", () => {
  afterEach(() => vi.unstubAllGlobals());

  it("counts a reply that arrives between the server's count and the latest page", async () => {
    const { server, chat } = open();
    server.readSeq[`${CUSTOMER}:${server.conversationId}`] = 2;
    chat.visible.value = false;
    // The count (0 unread, up to seq 2) is taken; the agent's reply is stored before the page is.
    const release = server.hold("all_member");
    await chat.start(true);
    await flush();
    server.deliver(server.store(AGENT, "It ships today"));
    await flush();
    release();
    await flush(20);
    expect(chat.messages.value.map((m) => m.seq)).toEqual([1, 2, 3]);
    expect(chat.unread.value).toBe(1);
  });
});
