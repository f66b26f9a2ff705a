// The customer's chat on the offline path, over the fake server: a resume link's session, a
// message left through the offline form, the agent asked for, and the transcript by e-mail.
import { afterEach, describe, expect, it, vi } from "vitest";
import { AGENT, CUSTOMER, FakeChatServer, fakeFetch } from "../../shared/testing/fakeServer";
import { flush } from "../../shared/testing/fakeSocket";
import { useCustomerChat, type CustomerChatOptions } from "./useCustomerChat";

const sockets = vi.hoisted(() => ({ next: null as unknown }));
vi.mock("socket.io-client", () => ({ io: () => sockets.next }));

function open(options: CustomerChatOptions = {}, setup?: (s: FakeChatServer) => void) {
  const server = new FakeChatServer();
  setup?.(server);
  const socket = server.socketFor(CUSTOMER);
  sockets.next = socket;
  vi.stubGlobal("fetch", fakeFetch(server));
  const chat = useCustomerChat(options);
  return { server, socket, chat };
}

describe("useCustomerChat on the offline path", () => {
  afterEach(() => vi.unstubAllGlobals());

  it("takes a resume link's session as the visitor's", async () => {
    const { server, chat } = open({ resumeToken: "good" }, (s) => s.http.resumeTokens.add("good"));
    await chat.start(true);
    await flush(20);
    expect(chat.token.value).toBe("resumed-token");
    expect(chat.resumeFailed.value).toBe(false);
    expect(server.http.requests.filter((r) => r.url === "/api/visitors")).toEqual([]);
  });

  it("says an invalid resume link failed and goes on as a new visitor", async () => {
    const { server, chat } = open({ resumeToken: "forged" });
    await chat.start(true);
    await flush(20);
    expect(chat.resumeFailed.value).toBe(true);
    expect(chat.token.value).toBe("visitor-token");
    expect(server.http.requests.map((r) => r.url)).toContain("/api/visitors");
  });

  it("shows a message left offline in the conversation, which then waits as left offline", async () => {
    const { server, chat } = open({}, (s) => {
      s.conversationId = null;
    });
    await chat.start(true);
    await flush(20);
    expect(chat.leftOffline.value).toBe(false);
    server.conversationId = null;
    const res = await fetch("/api/offline-messages", { method: "POST", body: JSON.stringify({ content: "Where is my parcel?" }) });
    chat.leftMessage(await res.json(), "ann@example.com");
    await flush(5);
    expect(chat.messages.value.map((m) => m.content)).toEqual(["Where is my parcel?"]);
    expect(chat.leftOffline.value).toBe(true);
    expect(chat.leftOfflineEmail.value).toBe("ann@example.com");
    expect(chat.queue.value).toMatchObject({ conversationId: "20", position: 1 });
  });

  it("knows after a reload that the open conversation was left offline", async () => {
    const { server, chat } = open();
    server.store(CUSTOMER, "left while away");
    const inner = fakeFetch(server);
    vi.stubGlobal("fetch", (async (input: RequestInfo | URL, init?: RequestInit) => {
      const res = await inner(input, init);
      if (String(input) !== "/api/conversations") return res;
      const body = (await res.json()) as { conversations: Array<Record<string, unknown>> };
      return new Response(JSON.stringify({ conversations: body.conversations.map((c) => ({ ...c, offline: true, endedAs: null })) }));
    }) as typeof fetch);
    await chat.start(true);
    await flush(20);
    expect(chat.leftOffline.value).toBe(true);
  });

  it("keeps the login's word on the agent asked for, and asks for it by csId", async () => {
    const { socket, chat, server } = open({ csId: "5" });
    const waitsUntil = Date.now() + 120_000;
    const respond = socket.respond;
    socket.respond = async (event, payload) => {
      const a = await respond(event, payload);
      return event === "login" ? { ...(a as object), requestedAgent: { id: "5", online: false, waitsUntil } } : a;
    };
    await chat.start(true);
    await flush(20);
    expect(socket.emitted.find((e) => e.event === "login")?.payload).toEqual({ userId: CUSTOMER, csId: "5" });
    expect(chat.requestedAgent.value).toEqual({ id: "5", online: false, waitsUntil });
    expect(server.messages.length).toBe(0);
  });

  it("e-mails the transcript of the conversation that ended, and says where", async () => {
    const { server, chat } = open();
    server.store(CUSTOMER, "hello");
    server.store(AGENT, "hi");
    await chat.start(true);
    await flush(20);
    server.resolve();
    await flush(5);
    expect(chat.ended.value?.conversationId).toBe("8");
    await chat.emailTranscript();
    expect(chat.transcriptMail.value).toEqual({ state: "sent", to: "ann@example.com" });
    expect(server.http.requests.at(-1)).toMatchObject({ method: "POST", url: "/api/conversations/8/transcript/email" });
  });

  it("says why the transcript could not be sent", async () => {
    const { server, chat } = open({}, (s) => (s.http.transcriptTo = null));
    server.store(CUSTOMER, "hello");
    await chat.start(true);
    await flush(20);
    server.resolve();
    await flush(5);
    await chat.emailTranscript();
    expect(chat.transcriptMail.value).toEqual({
      state: "failed",
      failure: { code: "invalid_payload", message: "We have no e-mail address for you." },
    });
  });
});
