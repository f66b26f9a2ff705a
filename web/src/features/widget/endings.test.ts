import { describe, expect, it } from "vitest";
import { addStored, allMessages, emptySegment, updateSegment } from "../../shared/conversation/segments";
import { fromServer } from "../../shared/messages";
import type { Message } from "../../shared/protocol";
import { endedAfter, endedSegment, lastKeyBefore } from "./endings";

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
