import { describe, expect, it } from "vitest";
import {
  previewOf,
  peerOfConversation,
  removeMember,
  applyMessage,
  applyPreview,
  mergeMemberList,
  setOnline,
  setOnlineSet,
  setUnread,
  sortByActivity,
  totalUnread,
  type MemberEntry,
} from "./members";
import type { Member, Message } from "./protocol";

const ME = "3";
const member = (id: string, over: Partial<Member> = {}): Member => ({
  id,
  role: "customer",
  username: `visitor-${id}`,
  displayName: `Visitor ${id}`,
  message_count: 0,
  online: true,
  conversationId: `c${id}`,
  lastMessage: null,
  offline: false,
  email: null,
  phone: null,
  ...over,
});
const message = (from: string, to: string, ts: string, content = "hi"): Message => ({
  id: "1",
  seq: 1,
  conversationId: "c",
  senderId: from,
  receiverId: to,
  kind: "text",
  content,
  timestamp: ts,
  clientMsgId: null,
});

describe("mergeMemberList", () => {
  it("takes unread counts and presence from the server and keeps known previews", () => {
    const prev = mergeMemberList([], [member("12")], ME);
    const withPreview = applyPreview(prev, "12", { content: "x", timestamp: "2026-01-01T00:00:00.000Z", fromMe: false });
    const out = mergeMemberList(withPreview, [member("12", { message_count: 4, online: false }), member("13")], ME);
    expect(out.map((e) => [e.id, e.unread, e.online, e.last?.content ?? null])).toEqual([
      ["12", 4, false, "x"],
      ["13", 0, true, null],
    ]);
  });

  it("drops the preview of a customer who has a new conversation", () => {
    const prev = applyPreview(mergeMemberList([], [member("12")], ME), "12", {
      content: "old",
      timestamp: "2026-01-01T00:00:00.000Z",
      fromMe: true,
    });
    expect(mergeMemberList(prev, [member("12", { conversationId: "other" })], ME)[0]!.last).toBeNull();
  });
});

describe("previews from lastMessage", () => {
  const at = (h: number) => `2026-01-01T${String(h).padStart(2, "0")}:00:00.000Z`;

  it("shows each conversation's latest message, mine or the customer's, with no request per customer", () => {
    const out = mergeMemberList(
      [],
      [
        member("12", { lastMessage: message("12", ME, at(9), "where is my parcel?") }),
        member("13", { lastMessage: message(ME, "13", at(10), "on its way") }),
        member("14"),
      ],
      ME,
    );
    expect(out.map((e) => e.last)).toEqual([
      { content: "where is my parcel?", timestamp: at(9), fromMe: false },
      { content: "on its way", timestamp: at(10), fromMe: true },
      null,
    ]);
    expect(sortByActivity(out).map((e) => e.id)).toEqual(["13", "12", "14"]);
  });

  it("keeps a live message newer than the server's answer, and takes the server's when it is newer", () => {
    const first = mergeMemberList([], [member("12", { lastMessage: message("12", ME, at(9), "old") })], ME);
    const live = applyMessage(first, message("12", ME, at(11), "live"), ME, false).list;
    // An all_member answer computed before the live message arrived.
    const stale = mergeMemberList(live, [member("12", { lastMessage: message("12", ME, at(9), "old") })], ME);
    expect(stale[0]!.last?.content).toBe("live");
    const fresh = mergeMemberList(live, [member("12", { lastMessage: message(ME, "12", at(12), "answer") })], ME);
    expect(fresh[0]!.last).toEqual({ content: "answer", timestamp: at(12), fromMe: true });
  });
});

describe("sortByActivity", () => {
  it("puts the latest activity first and silent conversations last, by name", () => {
    let list: MemberEntry[] = mergeMemberList(
      [],
      [member("1", { displayName: "Zoe" }), member("2", { displayName: "Amy" }), member("3"), member("4")],
      ME,
    );
    list = applyMessage(list, message("3", ME, "2026-01-01T10:00:00.000Z"), ME, false).list;
    list = applyMessage(list, message("4", ME, "2026-01-01T11:00:00.000Z"), ME, false).list;
    expect(sortByActivity(list).map((e) => e.id)).toEqual(["4", "3", "2", "1"]);
  });
});

describe("applyMessage", () => {
  const list = mergeMemberList([], [member("12"), member("13", { message_count: 1 })], ME);

  it("counts a customer's message as unread unless the agent is reading that conversation", () => {
    const m = message("12", ME, "2026-01-01T10:00:00.000Z", "hello");
    expect(applyMessage(list, m, ME, false).list[0]).toMatchObject({ unread: 1, last: { content: "hello", fromMe: false } });
    expect(applyMessage(list, m, ME, true).list[0]!.unread).toBe(0);
  });

  it("updates the preview but not the unread count for my own messages", () => {
    const out = applyMessage(list, message(ME, "13", "2026-01-01T10:00:00.000Z", "reply"), ME, false).list;
    expect(out[1]).toMatchObject({ unread: 1, last: { content: "reply", fromMe: true } });
  });

  it("reports a message from a customer not in the list", () => {
    expect(applyMessage(list, message("99", ME, "2026-01-01T10:00:00.000Z"), ME, false).known).toBe(false);
  });

  it("keeps a newer preview when an older message arrives late", () => {
    const newer = applyMessage(list, message("12", ME, "2026-01-01T11:00:00.000Z", "new"), ME, false).list;
    const out = applyMessage(newer, message("12", ME, "2026-01-01T10:00:00.000Z", "old"), ME, false).list;
    expect(out[0]!.last?.content).toBe("new");
    expect(out[0]!.unread).toBe(2);
  });
});

describe("presence and counts", () => {
  const list = mergeMemberList([], [member("12", { message_count: 2 }), member("13", { message_count: 3, online: false })], ME);

  it("setOnline changes one member", () => {
    expect(setOnline(list, "13", true).map((e) => e.online)).toEqual([true, true]);
  });
  it("setOnlineSet makes exactly the listed members online", () => {
    expect(setOnlineSet(list, ["13"]).map((e) => e.online)).toEqual([false, true]);
  });
  it("setUnread and totalUnread", () => {
    expect(totalUnread(list)).toBe(5);
    expect(totalUnread(setUnread(list, "13", 0))).toBe(2);
  });
});

describe("conversations that leave the list", () => {
  it("drops a resolved or transferred conversation and keeps the others", () => {
    const list = mergeMemberList([], [member("1"), member("2")], "3");
    expect(removeMember(list, "1").map((e) => e.id)).toEqual(["2"]);
  });
  it("finds the customer of a conversation by its id", () => {
    const list = mergeMemberList([], [member("1"), member("2")], "3");
    expect(peerOfConversation(list, "c2")).toBe("2");
    expect(peerOfConversation(list, "c9")).toBeUndefined();
  });
});

describe("system messages in previews", () => {
  it("does not present a system message as something I wrote", () => {
    const list = mergeMemberList([], [member("1")], "3");
    const m: Message = {
      id: "9",
      seq: 4,
      conversationId: "c1",
      senderId: "3",
      receiverId: "1",
      kind: "system",
      content: "Carol joined the conversation",
      timestamp: "2026-11-26T04:00:00.000Z",
      clientMsgId: null,
    };
    expect(applyMessage(list, m, "3", true).list[0]!.last).toMatchObject({ content: "Carol joined the conversation", fromMe: false });
    expect(previewOf(m, "3").fromMe).toBe(false);
  });
});

describe("conversations left offline", () => {
  it("carry the badge and the customer's contact when the list gives them", () => {
    const m = { ...member("7"), offline: true, email: " dana@example.com ", phone: "+1 555" } as Member;
    const [e] = mergeMemberList([], [m], "3");
    expect(e).toMatchObject({ offline: true, email: "dana@example.com", phone: "+1 555" });
  });
  it("are not offline, and have no contact, when the list says nothing (an older server)", () => {
    const [e] = mergeMemberList([], [member("7")], "3");
    expect(e).toMatchObject({ offline: false, email: null, phone: null });
  });
});
