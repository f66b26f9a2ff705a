import { afterEach, describe, expect, it, vi } from "vitest";
import type { Socket } from "socket.io-client";
import { FakeSocket, flush, type Responder } from "./testing/fakeSocket";
import { ChatError, useChatSocket, type ChatHandlers } from "./useChatSocket";

function setup(respond: Responder, handlers: ChatHandlers = {}, resyncDelayMs?: () => number) {
  const fake = new FakeSocket(respond);
  const chat = useChatSocket({
    token: "t",
    userId: "12",
    handlers,
    connect: () => fake as unknown as Socket,
    requestTimeoutMs: 200,
    ...(resyncDelayMs ? { resyncDelayMs } : {}),
  });
  return { fake, chat };
}

const okLogin = { ok: true, csId: "3", conversationId: "8", queued: false };

describe("useChatSocket", () => {
  it("logs in on every connection and tells the store whether it resumed", async () => {
    const ready = vi.fn();
    const { fake, chat } = setup((e) => (e === "login" ? okLogin : { ok: true }), { ready });
    chat.start();
    await flush();
    expect(fake.emitted[0]).toEqual({ event: "login", payload: { userId: "12" } });
    expect(chat.state.value).toBe("online");
    expect(ready).toHaveBeenLastCalledWith(okLogin, false);

    fake.drop();
    expect(chat.state.value).toBe("reconnecting");
    fake.connect();
    await flush();
    expect(fake.emitted.filter((e) => e.event === "login")).toHaveLength(2);
    expect(ready).toHaveBeenLastCalledWith(okLogin, true);
    expect(chat.state.value).toBe("online");
  });

  it("holds requests until the connection has logged in", async () => {
    const { fake, chat } = setup((e) => (e === "login" ? okLogin : { ok: true, id: "1", seq: 1 }));
    const sent = chat.sendMessage({ content: "hi", clientMsgId: "c-1" });
    chat.start();
    await sent;
    expect(fake.emitted.map((e) => e.event)).toEqual(["login", "private_message"]);
  });

  it("sends what was written while away after the catch-up, in the order written", async () => {
    let caughtUp = () => {};
    const ready = vi.fn(() => new Promise<void>((r) => (caughtUp = r)));
    const page = { ok: true, conversationId: "8", messages: [], hasMore: false, peerReadSeq: 0 };
    const { fake, chat } = setup((e) => (e === "login" ? okLogin : e === "history" ? page : { ok: true, id: "1", seq: 1 }), { ready });
    const first = chat.sendMessage({ content: "written while away", clientMsgId: "c-1" });
    chat.start();
    await flush();
    expect(ready).toHaveBeenCalled();
    // The catch-up's own requests go out; messages wait for it, also one written meanwhile.
    await chat.history({ afterSeq: 0 });
    const second = chat.sendMessage({ content: "written during the catch-up", clientMsgId: "c-2" });
    await flush();
    const sent = () => fake.emitted.map((e) => (e.event === "private_message" ? (e.payload as { clientMsgId: string }).clientMsgId : e.event));
    expect(sent()).toEqual(["login", "history"]);
    caughtUp();
    await Promise.all([first, second]);
    expect(sent()).toEqual(["login", "history", "c-1", "c-2"]);
  });

  it("fails a request that gets no answer, and one that the server refuses", async () => {
    const { chat } = setup((e, p) => {
      if (e === "login") return okLogin;
      if ((p as { content: string }).content === "slow") return undefined;
      return { ok: false, error: { code: "rate_limited", message: "slow down" } };
    });
    chat.start();
    await expect(chat.sendMessage({ content: "slow" })).rejects.toMatchObject({ code: "timeout" });
    const refused = chat.sendMessage({ content: "x" });
    await expect(refused).rejects.toBeInstanceOf(ChatError);
    await expect(refused).rejects.toMatchObject({ code: "rate_limited" });
  });

  it("resyncs page after page while the server has more", async () => {
    const page = (from: number, to: number) =>
      Array.from({ length: to - from + 1 }, (_, i) => ({ id: String(from + i), seq: from + i }));
    const { fake, chat } = setup((e, p) => {
      if (e === "login") return okLogin;
      const after = (p as { afterSeq: number }).afterSeq;
      return after === 7
        ? { ok: true, conversationId: "8", messages: page(8, 107), hasMore: true, peerReadSeq: 6 }
        : { ok: true, conversationId: "8", messages: page(108, 120), hasMore: false, peerReadSeq: 110 };
    });
    chat.start();
    const { messages, conversationId, peerReadSeq } = await chat.historyAfter(7, "99");
    expect(conversationId).toBe("8");
    // The peer read on while we were away: the latest position counts.
    expect(peerReadSeq).toBe(110);
    expect(messages.map((m) => m.seq)).toEqual(Array.from({ length: 113 }, (_, i) => i + 8));
    expect(fake.emitted.filter((e) => e.event === "history").map((e) => e.payload)).toEqual([
      { peerId: "99", afterSeq: 7, limit: 100 },
      { peerId: "99", afterSeq: 107, limit: 100 },
    ]);
  });

  it("reports a refused token", async () => {
    const unauthorized = vi.fn();
    const { fake, chat } = setup(() => okLogin, { unauthorized });
    fake.fire("connect_error", new Error("unauthorized"));
    expect(chat.state.value).toBe("unauthorized");
    expect(unauthorized).toHaveBeenCalledExactlyOnceWith("expired");
  });

  it("reconnects at once after a server-side disconnect, and resumes", async () => {
    const ready = vi.fn();
    const { fake, chat } = setup(() => okLogin, { ready });
    chat.start();
    await flush();
    fake.drop("io server disconnect");
    await flush();
    expect(chat.state.value).toBe("online");
    expect(ready).toHaveBeenLastCalledWith(okLogin, true);
  });

  it("tells a disabled account apart: closed by the server, then refused", async () => {
    const unauthorized = vi.fn();
    const { fake, chat } = setup(() => okLogin, { unauthorized });
    chat.start();
    await flush();
    fake.refuse = true;
    fake.drop("io server disconnect");
    expect(chat.state.value).toBe("unauthorized");
    expect(unauthorized).toHaveBeenCalledExactlyOnceWith("revoked");
  });

  it("a token refused after a network drop is not called revoked", async () => {
    const unauthorized = vi.fn();
    const { fake, chat } = setup(() => okLogin, { unauthorized });
    chat.start();
    await flush();
    fake.drop("transport close");
    fake.refuse = true;
    fake.connect();
    expect(unauthorized).toHaveBeenCalledExactlyOnceWith("expired");
  });

  it("routes server events to the store", async () => {
    const presence = vi.fn();
    const message = vi.fn();
    const { fake } = setup(() => okLogin, { presence, message });
    fake.fire("user_online", "3");
    fake.fire("update_member_list", { userId: "4", online: false });
    fake.fire("new_private_message", { id: "1" });
    expect(presence.mock.calls).toEqual([
      ["3", true],
      ["4", false],
    ]);
    expect(message).toHaveBeenCalledWith({ id: "1" });
  });

  describe("on the server's resync", () => {
    afterEach(() => {
      vi.useRealTimers();
      vi.restoreAllMocks();
    });

    it("resyncs after the random delay, once for a burst of resync events", async () => {
      vi.useFakeTimers();
      const resync = vi.fn();
      const { fake, chat } = setup(() => okLogin, { resync }, () => 1200);
      chat.start();
      await vi.advanceTimersByTimeAsync(0);
      fake.fire("resync", { reason: "cluster" });
      await vi.advanceTimersByTimeAsync(600);
      fake.fire("resync", { reason: "cluster" });
      fake.fire("resync", { reason: "something new" });
      await vi.advanceTimersByTimeAsync(599);
      expect(resync).not.toHaveBeenCalled();
      await vi.advanceTimersByTimeAsync(1);
      expect(resync).toHaveBeenCalledTimes(1);
      await vi.advanceTimersByTimeAsync(10_000);
      expect(resync).toHaveBeenCalledTimes(1);
    });

    it("resyncs once more for resync events that come while one is under way", async () => {
      vi.useFakeTimers();
      let end = () => {};
      const resync = vi.fn(() => new Promise<void>((r) => (end = r)));
      const { fake, chat } = setup(() => okLogin, { resync }, () => 0);
      chat.start();
      await vi.advanceTimersByTimeAsync(0);
      fake.fire("resync", { reason: "cluster" });
      await vi.advanceTimersByTimeAsync(0);
      fake.fire("resync", { reason: "cluster" });
      fake.fire("resync", { reason: "cluster" });
      await vi.advanceTimersByTimeAsync(0);
      expect(resync).toHaveBeenCalledTimes(1);
      end();
      await vi.advanceTimersByTimeAsync(0);
      expect(resync).toHaveBeenCalledTimes(2);
      end();
      await vi.advanceTimersByTimeAsync(10_000);
      expect(resync).toHaveBeenCalledTimes(2);
    });

    it("leaves it to the reconnect when the connection dropped meanwhile", async () => {
      vi.useFakeTimers();
      const resync = vi.fn();
      const { fake, chat } = setup(() => okLogin, { resync }, () => 500);
      chat.start();
      await vi.advanceTimersByTimeAsync(0);
      fake.fire("resync", { reason: "cluster" });
      fake.drop();
      await vi.advanceTimersByTimeAsync(1000);
      expect(resync).not.toHaveBeenCalled();
    });

    it("waits at most two seconds by default", async () => {
      vi.useFakeTimers();
      vi.spyOn(Math, "random").mockReturnValue(0.9999);
      const resync = vi.fn();
      const { fake, chat } = setup(() => okLogin, { resync });
      chat.start();
      await vi.advanceTimersByTimeAsync(0);
      fake.fire("resync", { reason: "cluster" });
      await vi.advanceTimersByTimeAsync(2000);
      expect(resync).toHaveBeenCalledTimes(1);
    });
  });
});
