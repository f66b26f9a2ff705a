import { describe, expect, it } from "vitest";
import { fromServer, localMessage, type ChatMessage } from "./messages";
import type { Message, Note } from "./protocol";
import { interleaveNotes, layoutTimeline, type TimelineEntry } from "./timeline";

const AGENT = "3";
const ME = "12";
const at = (min: number, sec = 0) => new Date(Date.UTC(2026, 10, 26, 4, min, sec)).toISOString();

function msg(seq: number, over: Partial<Message> = {}): ChatMessage {
  return fromServer({
    id: String(100 + seq),
    seq,
    conversationId: "8",
    senderId: AGENT,
    receiverId: ME,
    kind: "text",
    content: `m${seq}`,
    timestamp: at(seq),
    clientMsgId: null,
    ...over,
  });
}
function note(id: number, timestamp: string): Note {
  return { id: String(id), conversationId: "8", authorId: AGENT, authorName: "Alice", content: `n${id}`, timestamp };
}
const labels = (entries: TimelineEntry[]) =>
  entries.map((e) => (e.type === "message" ? e.message.content : e.note.content));
const messageRows = (entries: TimelineEntry[]) =>
  entries.filter((e) => e.type === "message").map((e) => e.message);

describe("interleaveNotes", () => {
  it("puts each note just before the first message written after it", () => {
    const messages = [msg(1), msg(2), msg(3)];
    const notes = [note(2, at(2, 30)), note(1, at(0, 30))];
    expect(labels(interleaveNotes(messages, notes))).toEqual(["n1", "m1", "m2", "n2", "m3"]);
  });

  it("puts notes written after the last message at the end", () => {
    expect(labels(interleaveNotes([msg(1)], [note(1, at(5))]))).toEqual(["m1", "n1"]);
  });

  it("shows a message before a note of the same instant", () => {
    expect(labels(interleaveNotes([msg(1), msg(2)], [note(1, at(1))]))).toEqual(["m1", "n1", "m2"]);
  });

  it("keeps the messages in their seq order even when their clocks disagree", () => {
    const messages = [msg(1), msg(2, { timestamp: at(0) }), msg(3)];
    expect(labels(interleaveNotes(messages, [note(1, at(2, 30))]))).toEqual(["m1", "m2", "n1", "m3"]);
  });

  it("leaves out notes older than the loaded messages while older messages are not loaded", () => {
    const messages = [msg(5), msg(6)];
    const notes = [note(1, at(1)), note(2, at(5, 30))];
    expect(labels(interleaveNotes(messages, notes, false))).toEqual(["m5", "n2", "m6"]);
    expect(labels(interleaveNotes(messages, notes, true))).toEqual(["n1", "m5", "n2", "m6"]);
  });

  it("shows the notes of a conversation that has no message yet", () => {
    expect(labels(interleaveNotes([], [note(1, at(1))], false))).toEqual(["n1"]);
  });

  it("places notes before my messages that are still being sent", () => {
    const local = localMessage({ senderId: ME, receiverId: AGENT, content: "hi", clientMsgId: "c-1", now: new Date(at(9)) });
    expect(labels(interleaveNotes([msg(1), local], [note(1, at(2))]))).toEqual(["m1", "n1", "hi"]);
    expect(messageRows(interleaveNotes([msg(1), local], []))).toHaveLength(2);
  });
});

describe("layoutTimeline", () => {
  const day = (ts: string) => ts.slice(0, 10);
  const entries = (list: ChatMessage[]): TimelineEntry[] => list.map((message) => ({ type: "message", message }));

  it("starts a group when the sender changes and marks new days", () => {
    const list = [msg(1), msg(2), msg(3, { senderId: ME }), msg(4, { timestamp: "2026-11-27T09:00:00.000Z" })];
    const rows = layoutTimeline(entries(list), ME, day);
    expect(rows.map((r) => r.type)).toEqual(["day", "message", "message", "message", "day", "message"]);
    const msgs = rows.filter((r) => r.type === "message");
    expect(msgs.map((r) => r.startsGroup)).toEqual([true, false, true, true]);
    expect(msgs.map((r) => r.mine)).toEqual([false, false, true, false]);
    expect(rows.filter((r) => r.type === "day").map((r) => r.label)).toEqual(["2026-11-26", "2026-11-27"]);
  });

  it("starts a new group after a pause of more than five minutes", () => {
    const rows = layoutTimeline(entries([msg(1), msg(2), msg(9)]), ME, day).filter((r) => r.type === "message");
    expect(rows.map((r) => r.startsGroup)).toEqual([true, false, true]);
  });

  it("shows system messages as info lines that end a sender's run", () => {
    const list = [msg(1), msg(2, { kind: "system", content: "Bob joined the conversation" }), msg(3)];
    const rows = layoutTimeline(entries(list), ME, day).filter((r) => r.type !== "day");
    expect(rows.map((r) => r.type)).toEqual(["message", "system", "message"]);
    expect(rows[2]).toMatchObject({ type: "message", startsGroup: true });
  });

  it("shows notes as their own rows between messages", () => {
    const rows = layoutTimeline(interleaveNotes([msg(1), msg(3)], [note(1, at(2))]), ME, day).filter((r) => r.type !== "day");
    expect(rows.map((r) => r.type)).toEqual(["message", "note", "message"]);
    expect(rows[2]).toMatchObject({ startsGroup: true });
  });

  it("puts a marker after its message, at the start, or at the end when its message is gone", () => {
    const markers = [
      { key: "a", afterKey: msg(1).key, text: "ended", tone: "ended" as const },
      { key: "b", afterKey: null, text: "first", tone: "info" as const },
      { key: "c", afterKey: "m:nope", text: "last", tone: "info" as const },
    ];
    const rows = layoutTimeline(entries([msg(1), msg(2)]), ME, day, markers);
    expect(rows.map((r) => (r.type === "marker" ? r.text : r.type))).toEqual(["day", "first", "message", "ended", "message", "last"]);
    expect(rows[4]).toMatchObject({ type: "message", startsGroup: true });
  });

  const shape = (rows: ReturnType<typeof layoutTimeline>) =>
    rows.map((r) => (r.type === "marker" ? r.text : r.type === "day" ? `day ${r.label}` : r.type === "message" ? r.message.content : r.type));
  const joined = { key: "assigned", afterKey: null, text: "Alice joined", tone: "info" as const };

  it("draws a line about the start after the divider of the first message's day, not above it", () => {
    // The visitor was assigned before writing anything, then wrote today.
    expect(shape(layoutTimeline(entries([msg(1), msg(2)]), ME, day, [joined]))).toEqual([
      "day 2026-11-26",
      "Alice joined",
      "m1",
      "m2",
    ]);
  });

  it("gives a line with a time the divider of its own day", () => {
    // The last conversation ended yesterday; Alice joined the new one today, before its first message.
    const yesterday = msg(1, { timestamp: "2026-11-25T09:00:00.000Z" });
    const ended = { key: "ended", afterKey: yesterday.key, text: "ended", tone: "ended" as const };
    const today = { ...joined, afterKey: yesterday.key, at: at(1, 30) };
    expect(shape(layoutTimeline(entries([yesterday, msg(2)]), ME, day, [ended, today]))).toEqual([
      "day 2026-11-25",
      "m1",
      "ended",
      "day 2026-11-26",
      "Alice joined",
      "m2",
    ]);
  });

  it("shows the divider of a line's day when no message is there yet, and none again for the first message", () => {
    const line = { ...joined, at: at(0, 10) };
    expect(shape(layoutTimeline([], ME, day, [line]))).toEqual(["day 2026-11-26", "Alice joined"]);
    expect(shape(layoutTimeline(entries([msg(1)]), ME, day, [line]))).toEqual(["day 2026-11-26", "Alice joined", "m1"]);
  });

  it("keeps a line between its neighbours' days when its time says otherwise (a late event)", () => {
    // Learnt at a reload today, but its place is before yesterday's first message.
    const late = { ...joined, at: at(30) };
    const first = msg(1, { timestamp: "2026-11-25T09:00:00.000Z" });
    expect(shape(layoutTimeline(entries([first]), ME, day, [late]))).toEqual(["day 2026-11-25", "Alice joined", "m1"]);
  });
});
