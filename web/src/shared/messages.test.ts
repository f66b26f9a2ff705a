import { describe, expect, it } from "vitest";
import type { Message } from "./protocol";
import {
  confirmed,
  countUnread,
  fromServer,
  lastSeq,
  localMessage,
  mergeMessages,
  oldestStored,
  readSeqFromUnread,
  setDelivery,
  statusOf,
  type ChatMessage,
} from "./messages";

const AGENT = "3";
const ME = "12";

function msg(seq: number, over: Partial<Message> = {}): Message {
  return {
    id: String(100 + seq),
    seq,
    conversationId: "8",
    senderId: AGENT,
    receiverId: ME,
    kind: "text",
    content: `m${seq}`,
    timestamp: new Date(Date.UTC(2026, 10, 26, 4, 0, seq)).toISOString(),
    clientMsgId: null,
    ...over,
  };
}
const seqs = (l: ChatMessage[]) => l.map((m) => m.seq);

describe("mergeMessages", () => {
  it("orders a history page and live messages by seq", () => {
    const live = [fromServer(msg(5)), fromServer(msg(3))];
    const page = [1, 2, 3, 4].map((s) => fromServer(msg(s)));
    expect(seqs(mergeMessages(live, page))).toEqual([1, 2, 3, 4, 5]);
  });

  it("keeps one copy of a message received twice (resync overlapping live delivery)", () => {
    const a = [1, 2, 3].map((s) => fromServer(msg(s)));
    const b = [2, 3, 4].map((s) => fromServer(msg(s)));
    expect(seqs(mergeMessages(a, b))).toEqual([1, 2, 3, 4]);
  });

  it("replaces my sending message with the stored copy, keeping its key", () => {
    const local = localMessage({ senderId: ME, receiverId: AGENT, content: "hi", clientMsgId: "c-1", now: new Date() });
    const stored = fromServer(msg(7, { senderId: ME, receiverId: AGENT, content: "hi", clientMsgId: "c-1" }));
    const out = mergeMessages([local], [stored]);
    expect(out).toHaveLength(1);
    expect(out[0]).toMatchObject({ key: local.key, id: "107", seq: 7, delivery: "sent" });
  });

  it("turns a failed message into a sent one when resync finds it stored", () => {
    const local = localMessage({ senderId: ME, receiverId: null, content: "hi", clientMsgId: "c-9", now: new Date() });
    const failed = setDelivery([local], local.key, "failed");
    const out = mergeMessages(failed, [fromServer(msg(4, { senderId: ME, clientMsgId: "c-9" }))]);
    expect(out).toHaveLength(1);
    expect(out[0]!.delivery).toBe("sent");
  });

  it("never downgrades a stored message back to a local one", () => {
    const local = localMessage({ senderId: ME, receiverId: AGENT, content: "x", clientMsgId: "c-2", now: new Date() });
    const stored = fromServer(msg(2, { senderId: ME, clientMsgId: "c-2", content: "x" }));
    const out = mergeMessages([stored], [{ ...local, delivery: "failed" }]);
    expect(out[0]).toMatchObject({ id: "102", delivery: "sent" });
  });

  it("does not confuse equal clientMsgIds of different senders", () => {
    const mine = localMessage({ senderId: ME, receiverId: AGENT, content: "a", clientMsgId: "c-1", now: new Date() });
    const theirs = fromServer(msg(3, { clientMsgId: "c-1" }));
    expect(mergeMessages([mine], [theirs])).toHaveLength(2);
  });

  it("puts messages not stored yet after the stored ones, in writing order", () => {
    const l1 = localMessage({ senderId: ME, receiverId: AGENT, content: "1", clientMsgId: "a", now: new Date() });
    const l2 = localMessage({ senderId: ME, receiverId: AGENT, content: "2", clientMsgId: "b", now: new Date() });
    const out = mergeMessages([l1, l2], [fromServer(msg(9))]);
    expect(out.map((m) => m.content)).toEqual(["m9", "1", "2"]);
  });
});

describe("confirmed", () => {
  it("takes id, seq and the server's time from the ack", () => {
    const local = localMessage({ senderId: ME, receiverId: AGENT, content: "hi", clientMsgId: "c-1", now: new Date(0) });
    const m = confirmed(local, {
      ok: true,
      id: "301",
      seq: 7,
      conversationId: "8",
      createdAt: "2026-11-26T04:15:22.123Z",
      clientMsgId: "c-1",
      duplicate: true,
    });
    expect(m).toMatchObject({ id: "301", seq: 7, conversationId: "8", timestamp: "2026-11-26T04:15:22.123Z", delivery: "sent" });
  });
});

describe("positions", () => {
  const list = [1, 2, 3].map((s) => fromServer(msg(s, { senderId: s === 2 ? ME : AGENT })));

  it("lastSeq is the highest stored seq, 0 for an empty list", () => {
    expect(lastSeq(list)).toBe(3);
    expect(lastSeq([])).toBe(0);
  });

  it("oldestStored skips nothing stored", () => {
    expect(oldestStored(list)?.seq).toBe(1);
  });

  it("countUnread counts others' messages after my read position", () => {
    expect(countUnread(list, ME, 0)).toBe(2);
    expect(countUnread(list, ME, 1)).toBe(1);
    expect(countUnread(list, ME, 3)).toBe(0);
  });

  it("readSeqFromUnread turns the server's unread count into a read position", () => {
    expect(readSeqFromUnread(list, ME, 0)).toBe(3);
    expect(readSeqFromUnread(list, ME, 1)).toBe(2);
    expect(countUnread(list, ME, readSeqFromUnread(list, ME, 2))).toBe(2);
    expect(readSeqFromUnread(list, ME, 10)).toBe(0);
  });
});

describe("statusOf", () => {
  const local = localMessage({ senderId: ME, receiverId: AGENT, content: "x", clientMsgId: "c", now: new Date() });
  const sent = fromServer(msg(5, { senderId: ME }));

  it("shows sending and failed as they are", () => {
    expect(statusOf(local, ME, 99)).toBe("sending");
    expect(statusOf({ ...local, delivery: "failed" }, ME, 99)).toBe("failed");
  });
  it("shows read once the peer read up to that seq", () => {
    expect(statusOf(sent, ME, 4)).toBe("sent");
    expect(statusOf(sent, ME, 5)).toBe("read");
  });
  it("has no status for messages others sent", () => {
    expect(statusOf(fromServer(msg(5)), ME, 5)).toBeNull();
  });
});

describe("read receipts after a reload", () => {
  // Me at 1, 3, 4 and 6; the peer at 2 and 5.
  const list = [1, 2, 3, 4, 5, 6].map((s) => fromServer(msg(s, { senderId: s === 2 || s === 5 ? AGENT : ME })));
  const statuses = (peerReadSeq: number) => list.map((m) => statusOf(m, ME, peerReadSeq));

  it("shows read exactly up to the history's peerReadSeq, whether or not the peer replied after", () => {
    expect(statuses(4)).toEqual(["read", null, "read", "read", null, "sent"]);
    expect(statuses(6)).toEqual(["read", null, "read", "read", null, "read"]);
  });

  it("does not take the peer's reply as proof that it read what came before", () => {
    // The peer wrote seq 5 without having marked anything read (e.g. it answered from another tab).
    expect(statuses(0)).toEqual(["sent", null, "sent", "sent", null, "sent"]);
  });
});
