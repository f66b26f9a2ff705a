import { describe, expect, it } from "vitest";
import { fromServer, localMessage, mergeMessages, type ChatMessage } from "../messages";
import type { Message } from "../protocol";
import { contiguousSeq, floorOfPage, hasHole, readTarget } from "./seqs";

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
const list = (...seqs: number[]): ChatMessage[] => mergeMessages([], seqs.map((s) => fromServer(msg(s))));
const mine = (seq: number) => fromServer(msg(seq, { senderId: ME, receiverId: AGENT }));

describe("contiguousSeq", () => {
  it("is the highest seq held when nothing is missing", () => {
    expect(contiguousSeq(list(1, 2, 3), 0)).toBe(3);
    expect(contiguousSeq([], 0)).toBe(0);
  });

  it("stops before the first hole, wherever the higher seq came from", () => {
    // Seq 3 never arrived; 4 is my own message, acked before the catch-up.
    expect(contiguousSeq(mergeMessages(list(1, 2), [mine(4)]), 0)).toBe(2);
    expect(contiguousSeq(list(1, 2, 4, 5, 7), 0)).toBe(2);
  });

  it("starts at the floor: a latest page need not reach back to seq 1", () => {
    expect(contiguousSeq(list(51, 52, 53), 50)).toBe(53);
    expect(contiguousSeq(list(51, 52, 53), 0)).toBe(0);
    expect(contiguousSeq(list(51), 52)).toBe(52);
  });

  it("ignores messages not stored yet", () => {
    const local = localMessage({ senderId: ME, receiverId: AGENT, content: "x", clientMsgId: "c-1", now: new Date() });
    expect(contiguousSeq([...list(1, 2), local], 0)).toBe(2);
  });
});

describe("hasHole", () => {
  it("finds a message held beyond a missing one", () => {
    expect(hasHole(list(1, 2, 4), 0)).toBe(true);
    expect(hasHole(list(1, 2, 3), 0)).toBe(false);
    expect(hasHole(list(3), 0)).toBe(true);
    expect(hasHole(list(3), 2)).toBe(false);
    expect(hasHole([], 0)).toBe(false);
  });
});

describe("readTarget", () => {
  it("is the newest message from the peer", () => {
    expect(readTarget(mergeMessages(list(1, 2), [mine(3)]), ME, 0)?.seq).toBe(2);
    expect(readTarget(list(1, 2, 3), ME, 0)?.seq).toBe(3);
  });

  it("never reaches past a hole: the server would mark the missing message read", () => {
    expect(readTarget(list(1, 2, 4, 5), ME, 0)?.seq).toBe(2);
    expect(readTarget(list(3), ME, 0)).toBeUndefined();
  });

  it("has none when the peer wrote nothing held", () => {
    expect(readTarget([mine(1)], ME, 0)).toBeUndefined();
  });
});

describe("floorOfPage", () => {
  it("is 0 when the server has nothing older, else the seq below the page", () => {
    expect(floorOfPage([msg(1), msg(2)], false)).toBe(0);
    expect(floorOfPage([msg(51), msg(52)], true)).toBe(50);
    expect(floorOfPage([], false)).toBe(0);
  });
});
