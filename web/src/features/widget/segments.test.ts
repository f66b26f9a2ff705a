import { describe, expect, it } from "vitest";
import { fromServer, localMessage, setDelivery } from "../../shared/messages";
import type { Message } from "../../shared/protocol";
import {
  addBefore,
  addLocal,
  addOlder,
  addStored,
  allMessages,
  confirmLocal,
  current,
  emptySegment,
  endedAfter,
  endedSegment,
  gapFor,
  lastKeyBefore,
  lastSeqOf,
  peerReadSeqs,
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
    segs = confirmLocal(segs, mine, { id: "9001", seq: 1, conversationId: "9", createdAt: mine.timestamp, clientMsgId: "again", duplicate: false });
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
    segs = confirmLocal(segs, mine, { id: "8002", seq: 2, conversationId: "8", createdAt: mine.timestamp, clientMsgId: "again", duplicate: false });
    expect(segs.map((s) => s.conversationId)).toEqual(["8"]);
    expect(contents(segs)).toEqual(["c8m1", "again"]);
  });

  it("marks a failed message where it is", () => {
    const mine = local("oops");
    let segs = addLocal(addStored([], "8", stored("8", 1)), mine);
    segs = updateLocal(segs, mine.key, (l) => setDelivery(l, mine.key, "failed"));
    expect(current(segs)?.messages[1]?.delivery).toBe("failed");
  });

  it("finds a gap within a message's own conversation only", () => {
    const segs = addStored([], "8", stored("8", 1, 2, 3));
    expect(gapFor(segs, { conversationId: "8", seq: 4 })).toBeNull();
    expect(gapFor(segs, { conversationId: "8", seq: 6 })).toBe(3);
    // A new conversation starts at 1, whatever the old one reached.
    expect(gapFor(segs, { conversationId: "9", seq: 1 })).toBeNull();
    expect(gapFor(segs, { conversationId: "9", seq: 3 })).toBe(0);
    expect(lastSeqOf(segs, "8")).toBe(3);
    expect(lastSeqOf(segs, "9")).toBe(0);
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

  it("marks where each resolved conversation ended", () => {
    let segs = addStored([], "8", stored("8", 1, 2));
    segs = [...updateSegment(segs, "8", { resolved: true }), emptySegment("9")];
    expect(endedAfter(segs)).toEqual([{ conversationId: "8", afterKey: allMessages(segs)[1]!.key }]);
  });

  it("keeps my message acknowledged while the first page was on its way, which the page lacks", () => {
    // The page was read before my message was stored; its ack came first.
    const mine = local("hello");
    let segs = addLocal([], mine);
    segs = confirmLocal(segs, mine, { id: "8001", seq: 1, conversationId: "8", createdAt: mine.timestamp, clientMsgId: "hello", duplicate: false });
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
    segs = addBefore(segs, "8", stored("8", 1, 2), false);
    expect(contents(segs)).toEqual(["c8m1", "c8m2", "c8m3", "c8m4", "c9m1"]);
    expect(segs[0]!.hasMoreBefore).toBe(false);
  });

  it("asks for a rating of the conversation that ended until the customer writes in a new one", () => {
    let segs = updateSegment(addStored([], "8", stored("8", 1)), "8", { resolved: true });
    expect(endedSegment(segs)?.conversationId).toBe("8");
    // A reconnect opened a new conversation, still empty.
    segs = [...segs, emptySegment("9")];
    expect(endedSegment(segs)?.conversationId).toBe("8");
    segs = addStored(segs, "9", stored("9", 1));
    expect(endedSegment(segs)).toBeNull();
    expect(endedSegment(addStored([], "7", stored("7", 1)))).toBeNull();
  });

  it("finds the last message before a conversation, for the line that starts it", () => {
    const segs = [...updateSegment(addStored([], "8", stored("8", 1, 2)), "8", { resolved: true }), emptySegment("9")];
    expect(lastKeyBefore(segs, "9")).toBe(segs[0]!.messages[1]!.key);
    expect(lastKeyBefore(segs, "8")).toBeNull();
  });
});
