import { describe, expect, it } from "vitest";
import { fromServer, localMessage, setDelivery } from "../messages";
import type { Message } from "../protocol";
import {
  addBefore,
  addLocal,
  addOlder,
  addPage,
  addStored,
  allMessages,
  confirmLocal,
  contiguousOf,
  current,
  emptySegment,
  holeIn,
  peerReadSeqs,
  segmentOf,
  segmentOfPage,
  unreadCount,
  updateLocal,
  updateSegment,
  withLatestPage,
} from "./segments";

const AGENT = "3";
const ME = "12";

function msg(conversationId: string, seq: number, over: Partial<Message> = {}): Message {
  return {
    id: `${conversationId}${String(seq).padStart(3, "0")}`,
    seq,
    conversationId,
    senderId: AGENT,
    receiverId: ME,
    kind: "text",
    content: `c${conversationId}m${seq}`,
    timestamp: new Date(Date.UTC(2026, 10, 26, 4, Number(conversationId), seq)).toISOString(),
    clientMsgId: null,
    ...over,
  };
}
const stored = (c: string, ...seqs: number[]) => seqs.map((s) => fromServer(msg(c, s)));
const local = (content: string, id = content) =>
  localMessage({ senderId: ME, receiverId: null, content, clientMsgId: id, now: new Date(Date.UTC(2026, 10, 26, 5)) });
const contents = (segs: ReturnType<typeof addStored>) => allMessages(segs).map((m) => m.content);

describe("segments", () => {
  it("keeps a resolved conversation on screen and starts a new one with my next message", () => {
    let segs = addStored([], "8", stored("8", 1, 2));
    segs = updateSegment(segs, "8", { resolved: true });
    segs = addLocal(segs, local("new question"));
    expect(segs.map((s) => s.conversationId)).toEqual(["8", null]);
    expect(contents(segs)).toEqual(["c8m1", "c8m2", "new question"]);
  });

  it("orders each conversation by its own seqs, which start at 1 again", () => {
    let segs = addStored([], "8", stored("8", 1, 2, 3));
    segs = updateSegment(segs, "8", { resolved: true });
    segs = addStored(segs, "9", stored("9", 2, 1));
    expect(contents(segs)).toEqual(["c8m1", "c8m2", "c8m3", "c9m1", "c9m2"]);
  });

  it("moves my first message of the new conversation under the id the server gave it", () => {
    let segs = updateSegment(addStored([], "8", stored("8", 1)), "8", { resolved: true });
    const mine = local("again");
    segs = addLocal(segs, mine);
    segs = confirmLocal(segs, mine, { ok: true, id: "9001", seq: 1, conversationId: "9", createdAt: mine.timestamp, clientMsgId: "again", duplicate: false });
    expect(segs.map((s) => s.conversationId)).toEqual(["8", "9"]);
    expect(current(segs)?.messages[0]).toMatchObject({ key: mine.key, seq: 1, delivery: "sent" });
  });

  it("lets a live message of the new conversation take over the segment my message is starting", () => {
    let segs = updateSegment(addStored([], "8", stored("8", 1)), "8", { resolved: true });
    segs = addLocal(segs, local("again"));
    segs = addStored(segs, "9", stored("9", 2));
    expect(segs.map((s) => s.conversationId)).toEqual(["8", "9"]);
    expect(current(segs)?.messages.map((m) => m.content)).toEqual(["c9m2", "again"]);
  });

  it("puts my message back in the old conversation when the server kept it going", () => {
    let segs = updateSegment(addStored([], "8", stored("8", 1)), "8", { resolved: true });
    const mine = local("again");
    segs = addLocal(segs, mine);
    segs = confirmLocal(segs, mine, { ok: true, id: "8002", seq: 2, conversationId: "8", createdAt: mine.timestamp, clientMsgId: "again", duplicate: false });
    expect(segs.map((s) => s.conversationId)).toEqual(["8"]);
    expect(contents(segs)).toEqual(["c8m1", "again"]);
  });

  it("marks a failed message where it is", () => {
    const mine = local("oops");
    let segs = addLocal(addStored([], "8", stored("8", 1)), mine);
    segs = updateLocal(segs, mine.key, (l) => setDelivery(l, mine.key, "failed"));
    expect(current(segs)?.messages[1]?.delivery).toBe("failed");
  });

  it("knows per conversation how far it is held without a hole", () => {
    let segs = addStored([], "8", stored("8", 1, 2, 3));
    expect(contiguousOf(segmentOf(segs, "8")!)).toBe(3);
    segs = addStored(segs, "8", stored("8", 6));
    expect(contiguousOf(segmentOf(segs, "8")!)).toBe(3);
    expect(holeIn(segmentOf(segs, "8")!)).toBe(true);
    // A new conversation starts at 1, whatever the old one reached.
    segs = addStored(segs, "9", stored("9", 1));
    expect(holeIn(segmentOf(segs, "9")!)).toBe(false);
    segs = addStored(segs, "9", stored("9", 3));
    expect(contiguousOf(segmentOf(segs, "9")!)).toBe(1);
  });

  it("holds the latest page from its oldest message on, and an older page lowers that", () => {
    const page = { ok: true as const, conversationId: "8", messages: [51, 52, 53].map((s) => msg("8", s)), hasMore: true, peerReadSeq: 0 };
    let segs = [segmentOfPage(page)];
    expect(contiguousOf(segs[0]!)).toBe(53);
    expect(holeIn(segs[0]!)).toBe(false);
    segs = addBefore(segs, "8", { ok: true, conversationId: "8", messages: [49, 50].map((s) => msg("8", s)), hasMore: true, peerReadSeq: 0 });
    expect(segs[0]!.floor).toBe(48);
    segs = addBefore(segs, "8", { ok: true, conversationId: "8", messages: [], hasMore: false, peerReadSeq: 0 });
    expect(segs[0]!.floor).toBe(0);
  });

  it("adds a page of a conversation started elsewhere after the others, from where the page starts", () => {
    let segs = updateSegment(addStored([], "8", stored("8", 1)), "8", { resolved: true });
    segs = addPage(segs, { ok: true, conversationId: "9", messages: [4, 5].map((s) => msg("9", s)), hasMore: true, peerReadSeq: 2 });
    expect(segs.map((s) => s.conversationId)).toEqual(["8", "9"]);
    expect(segs[1]).toMatchObject({ floor: 3, hasMoreBefore: true, peerReadSeq: 2 });
    segs = addPage(segs, { ok: true, conversationId: "9", messages: [5, 6].map((s) => msg("9", s)), hasMore: true, peerReadSeq: 3 });
    expect(segs[1]!.messages.map((m) => m.seq)).toEqual([4, 5, 6]);
    expect(segs[1]).toMatchObject({ floor: 3, peerReadSeq: 3 });
  });

  it("counts unread messages of the current conversation only", () => {
    let segs = addStored([], "8", stored("8", 1, 2));
    expect(unreadCount(segs, ME)).toBe(2);
    segs = updateSegment(segs, "8", { resolved: true });
    expect(unreadCount(segs, ME)).toBe(0);
    segs = addStored(segs, "9", stored("9", 1));
    segs = updateSegment(segs, "9", { myReadSeq: 0 });
    expect(unreadCount(segs, ME)).toBe(1);
  });

  it("keeps read positions per conversation", () => {
    let segs = addStored([], "8", stored("8", 1));
    segs = updateSegment(segs, "8", { peerReadSeq: 7 });
    segs = addStored(segs, "9", stored("9", 1));
    expect(peerReadSeqs(segs)).toEqual({ "8": 7, "9": 0 });
  });

  it("keeps my message acknowledged while the first page was on its way, which the page lacks", () => {
    // The page was read before my message was stored; its ack came first.
    const mine = local("hello");
    let segs = addLocal([], mine);
    segs = confirmLocal(segs, mine, { ok: true, id: "8001", seq: 1, conversationId: "8", createdAt: mine.timestamp, clientMsgId: "hello", duplicate: false });
    segs = withLatestPage(segs, emptySegment("8", { messages: [], peerReadSeq: 0 }));
    expect(segs).toHaveLength(1);
    expect(allMessages(segs).map((m) => [m.content, m.delivery, m.key])).toEqual([["hello", "sent", mine.key]]);
  });

  it("puts the first page first, merged with a live reply, and my unsent message after it", () => {
    let segs = addStored([], "8", stored("8", 3));
    segs = addLocal(updateSegment(segs, "8", { resolved: true, peerReadSeq: 3 }), local("again"));
    segs = withLatestPage(segs, emptySegment("8", { messages: stored("8", 1, 2), peerReadSeq: 1, hasMoreBefore: false }));
    expect(segs.map((s) => s.conversationId)).toEqual(["8", null]);
    expect(contents(segs)).toEqual(["c8m1", "c8m2", "c8m3", "again"]);
    expect(segs[0]!.peerReadSeq).toBe(3);
  });

  it("puts an older conversation above the ones shown, once", () => {
    const segs = addStored([], "9", stored("9", 1));
    const older = emptySegment("8", { messages: stored("8", 1, 2), resolved: true });
    const out = addOlder(segs, older);
    expect(out.map((s) => s.conversationId)).toEqual(["8", "9"]);
    expect(addOlder(out, older)).toHaveLength(2);
  });

  it("adds an older page to its own conversation only", () => {
    let segs = addStored([], "8", stored("8", 3, 4));
    segs = addStored(updateSegment(segs, "8", { resolved: true, hasMoreBefore: true }), "9", stored("9", 1));
    segs = addBefore(segs, "8", { ok: true, conversationId: "8", messages: [msg("8", 1), msg("8", 2)], hasMore: false, peerReadSeq: 0 });
    expect(contents(segs)).toEqual(["c8m1", "c8m2", "c8m3", "c8m4", "c9m1"]);
    expect(segs[0]!.hasMoreBefore).toBe(false);
  });

});
