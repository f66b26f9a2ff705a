// The agent's console over a fake server: what the agent sees after a reconnect, whatever order the
// answers come in.
import { afterEach, describe, expect, it, vi } from "vitest";
import { AGENT, CUSTOMER, FakeChatServer, fakeFetch } from "../../shared/testing/fakeServer";
import { flush, type FakeSocket } from "../../shared/testing/fakeSocket";
import { useConsole } from "./useConsole";

const sockets = vi.hoisted(() => ({ next: null as unknown }));
vi.mock("socket.io-client", () => ({ io: () => sockets.next }));

function open() {
  const server = new FakeChatServer();
  server.store(CUSTOMER, "hello");
  server.store(AGENT, "reply");
  const socket = server.socketFor(AGENT);
  sockets.next = socket;
  vi.stubGlobal("fetch", fakeFetch(server));
  const store = useConsole({ token: "t", user: { id: AGENT, role: "agent", username: "gina", displayName: "Gina" } }, () => undefined);
  const held = () => (store.conversations[CUSTOMER]?.messages ?? []).flatMap((m) => (m.seq === null ? [] : [m.seq]));
  server.screen = () => held();
  return { server, socket, store, held };
}

/** Connected, the customer's conversation open and read, then the connection lost. */
async function openThenLose(socket: FakeSocket, store: ReturnType<typeof open>["store"]) {
  store.pageVisible.value = true;
  store.connect();
  await flush();
  store.select(CUSTOMER);
  await flush(20);
  socket.drop();
}

describe("useConsole after a reconnect", () => {
  afterEach(() => vi.unstubAllGlobals());

  it("shows the customer's message stored while away when my own message's ack comes before the catch-up", async () => {
    const { server, socket, store, held } = open();
    await openThenLose(socket, store);
    expect(held()).toEqual([1, 2]);

    server.store(CUSTOMER, "visitor typed while down");
    // The catch-up after the login waits; my message goes out meanwhile and is acked first (seq 4).
    const release = server.hold("all_member");
    socket.connect();
    await flush();
    store.send(CUSTOMER, "agent typed while down");
    await flush(20);
    release();
    await flush(20);
    expect(held()).toEqual([1, 2, 3, 4]);

    const next = server.store(CUSTOMER, "visitor after");
    server.deliver(next);
    await flush(20);
    expect(held()).toEqual([1, 2, 3, 4, 5]);
    expect(server.readsBeyondScreen()).toEqual([]);
    expect(server.reads.at(-1)).toMatchObject({ readerId: AGENT, seq: 5 });
  });

  it("shows the customer's message stored while away when a message I wrote while away went out first", async () => {
    const { server, socket, store, held } = open();
    await openThenLose(socket, store);

    server.store(CUSTOMER, "visitor typed while down");
    store.send(CUSTOMER, "agent typed while down");
    const release = server.hold("all_member");
    socket.connect();
    await flush(20);
    release();
    await flush(20);
    expect(held()).toEqual([1, 2, 3, 4]);

    server.deliver(server.store(CUSTOMER, "visitor after"));
    await flush(20);
    expect(held()).toEqual([1, 2, 3, 4, 5]);
    expect(server.readsBeyondScreen()).toEqual([]);
  });

  it("never marks read beyond a message it has not got yet", async () => {
    const { server, socket, store, held } = open();
    await openThenLose(socket, store);
    socket.connect();
    await flush(20);
    // Seq 3 was never delivered; seq 4 is, and the fetch of seq 3 takes its time.
    server.store(CUSTOMER, "lost on the way");
    const slowFetch = server.hold("history");
    server.deliver(server.store(CUSTOMER, "visitor after"));
    await flush(20);
    expect(held()).toEqual([1, 2, 4]);
    expect(server.readsBeyondScreen()).toEqual([]);
    slowFetch();
    await flush(20);
    expect(held()).toEqual([1, 2, 3, 4]);
    expect(server.readsBeyondScreen()).toEqual([]);
    expect(server.reads.at(-1)).toMatchObject({ readerId: AGENT, seq: 4 });
  });
});

describe("a customer's first message", () => {
  afterEach(() => vi.unstubAllGlobals());

  it("lists the customer only once it wrote, and names it in the notice of a hidden tab", async () => {
    const server = new FakeChatServer();
    server.messages = [];
    server.conversationId = null;
    const socket = server.socketFor(AGENT);
    sockets.next = socket;
    vi.stubGlobal("fetch", fakeFetch(server));
    const notices: Array<[string, string | null]> = [];
    const store = useConsole({ token: "t", user: { id: AGENT, role: "agent", username: "gina", displayName: "Gina" } }, (m, from) =>
      notices.push([m.content, from?.displayName ?? null]),
    );
    store.pageVisible.value = false;
    store.connect();
    await flush(20);
    expect(store.membersLoaded.value).toBe(true);
    expect(store.members.value).toEqual([]);

    // The customer writes: its conversation is assigned to me, then its message comes, before the
    // list that has it.
    server.conversationId = "9";
    const list = server.hold("all_member");
    server.assign();
    server.deliver(server.store(CUSTOMER, "Is the blue one in stock?"));
    await flush(20);
    expect(notices).toEqual([]);
    list();
    await flush(20);
    expect(store.members.value.map((m) => [m.displayName, m.unread])).toEqual([["Ann", 1]]);
    expect(notices).toEqual([["Is the blue one in stock?", "Ann"]]);
    store.close();
  });
});
