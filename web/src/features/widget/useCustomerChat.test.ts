// The customer's chat over a fake server: what the customer sees after a reconnect, whatever order
// the answers come in, and whether it has an open conversation (what the embedded chat tells the
// shop's page).
import { afterEach, describe, expect, it, vi } from "vitest";
import { AGENT, CUSTOMER, FakeChatServer, fakeFetch } from "../../shared/testing/fakeServer";
import { flush, type FakeSocket } from "../../shared/testing/fakeSocket";
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

describe("the line saying an agent joined", () => {
  afterEach(() => vi.unstubAllGlobals());

  it("goes before a message still being sent when the agent was assigned", async () => {
    const { server, socket, chat } = open();
    server.messages = [];
    const release = server.hold("login");
    await chat.start(true);
    await flush();
    chat.send("hello, anyone?");
    socket.fire("conversation_assigned", {
      conversationId: server.conversationId,
      customerId: CUSTOMER,
      agentId: AGENT,
      agent: { id: AGENT, role: "agent", username: "gina", displayName: "Gina" },
    });
    expect(chat.assigned.value).toMatchObject({ name: "Gina", afterKey: null, conversationId: server.conversationId });
    release();
    await flush(20);
    expect(chat.messages.value.map((m) => m.content)).toEqual(["hello, anyone?"]);
  });

  it("goes after the last message stored when the agent was assigned", async () => {
    const { server, socket, chat } = open();
    await chat.start(true);
    await flush(20);
    socket.fire("conversation_assigned", {
      conversationId: server.conversationId,
      customerId: CUSTOMER,
      agentId: AGENT,
      agent: { id: AGENT, role: "agent", username: "gina", displayName: "Gina" },
    });
    const last = chat.messages.value.at(-1)!;
    expect(last.seq).toBe(2);
    expect(chat.assigned.value?.afterKey).toBe(last.key);
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
