import { describe, expect, it } from "vitest";
import { addLocal, addStored, allMessages, emptySegment, updateSegment } from "../../shared/conversation/segments";
import { fromServer, localMessage } from "../../shared/messages";
import type { Message } from "../../shared/protocol";
import { endedAfter, endedSegment, heldUpTo, joinedAfter, lastKeyBefore } from "./endings";

function msg(conversationId: string, seq: number): Message {
  return {
    id: `${conversationId}${String(seq).padStart(3, "0")}`,
    seq,
    conversationId,
    senderId: "3",
    receiverId: "12",
    kind: "text",
    content: `c${conversationId}m${seq}`,
    timestamp: new Date(Date.UTC(2026, 10, 26, 4, Number(conversationId), seq)).toISOString(),
    clientMsgId: null,
  };
}
const stored = (c: string, ...seqs: number[]) => seqs.map((s) => fromServer(msg(c, s)));

describe("where conversations end", () => {
  it("marks where each resolved conversation ended", () => {
    let segs = addStored([], "8", stored("8", 1, 2));
    segs = [...updateSegment(segs, "8", { resolved: true }), emptySegment("9")];
    expect(endedAfter(segs)).toEqual([{ conversationId: "8", afterKey: allMessages(segs)[1]!.key }]);
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

describe("where the line saying an agent joined goes", () => {
  const local = (content: string) =>
    localMessage({ senderId: "12", receiverId: null, content, clientMsgId: content, now: new Date(Date.UTC(2026, 10, 26, 5)) });
  const keyOf = (segs: ReturnType<typeof addStored>, content: string) => allMessages(segs).find((m) => m.content === content)!.key;

  it("goes after the last message the screen held when the agent took the conversation", () => {
    const segs = addLocal(addStored([], "8", stored("8", 1, 2, 3)), local("on its way"));
    expect(heldUpTo(segs, "8")).toBe(3);
    expect(joinedAfter(segs, { conversationId: "8", afterSeq: 3 })).toBe(keyOf(segs, "c8m3"));
    expect(joinedAfter(segs, { conversationId: "8", afterSeq: 2 })).toBe(keyOf(segs, "c8m2"));
  });

  it("never goes above the message that started the conversation", () => {
    const segs = addStored([], "8", stored("8", 1, 2));
    expect(heldUpTo(segs, "9")).toBe(0);
    expect(joinedAfter(segs, { conversationId: "8", afterSeq: 0 })).toBe(keyOf(segs, "c8m1"));
  });

  it("goes after my first message while its ack, which names the conversation, is on its way", () => {
    // After a resolve: the new conversation is not named yet.
    const ended = updateSegment(addStored([], "8", stored("8", 1, 2)), "8", { resolved: true });
    const segs = addLocal(addLocal(ended, local("new question")), local("and another"));
    expect(joinedAfter(segs, { conversationId: "9", afterSeq: 0 })).toBe(keyOf(segs, "new question"));
    expect(joinedAfter(addLocal([], local("first words")), { conversationId: "9", afterSeq: 0 })).toBe(keyOf(addLocal([], local("first words")), "first words"));
  });

  it("waits on top, or after the conversations before, while none of the conversation is held", () => {
    expect(joinedAfter([], { conversationId: "9", afterSeq: 0 })).toBeNull();
    const ended = updateSegment(addStored([], "8", stored("8", 1, 2)), "8", { resolved: true });
    expect(joinedAfter(ended, { conversationId: "9", afterSeq: 0 })).toBe(keyOf(ended, "c8m2"));
  });
});
