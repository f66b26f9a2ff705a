import { describe, expect, it } from "vitest";
import type { CannedReply } from "../../shared/protocol";
import {
  canEditReply,
  cannedQuery,
  fillPlaceholders,
  filterCanned,
  moveSelection,
  normalizeShortcut,
  SHORTCUT_RE,
  suggestionKey,
} from "./canned";

const reply = (id: string, shortcut: string, shared = false): CannedReply => ({ id, shortcut, content: `${shortcut} text`, shared });
const replies = [reply("1", "/refund"), reply("2", "/hello", true), reply("3", "/ref-policy", true), reply("4", "/prefs")];

describe("cannedQuery", () => {
  it("opens on a slash at the start of the composer", () => {
    expect(cannedQuery("/")).toBe("/");
    expect(cannedQuery("/Ref")).toBe("/ref");
  });
  it("stays closed for a slash later in the text, a space or a second line", () => {
    expect(cannedQuery("see /ref")).toBeNull();
    expect(cannedQuery("/ref ")).toBeNull();
    expect(cannedQuery("/ref\nmore")).toBeNull();
    expect(cannedQuery("")).toBeNull();
  });
});

describe("filterCanned", () => {
  it("lists shortcuts starting with the query first, then those containing it", () => {
    expect(filterCanned(replies, "/ref").map((r) => r.shortcut)).toEqual(["/ref-policy", "/refund", "/prefs"]);
  });
  it("lists every reply for a bare slash, by shortcut", () => {
    expect(filterCanned(replies, "/").map((r) => r.id)).toEqual(["2", "4", "3", "1"]);
  });
  it("lists my own reply before a shared one with the same shortcut", () => {
    const both = [reply("9", "/hi", true), reply("8", "/hi")];
    expect(filterCanned(both, "/hi").map((r) => r.id)).toEqual(["8", "9"]);
  });
  it("finds nothing for a shortcut nobody saved", () => {
    expect(filterCanned(replies, "/zzz")).toEqual([]);
  });
});

describe("keyboard selection", () => {
  it("moves down and up with the arrow keys, wrapping around at both ends", () => {
    expect(moveSelection(0, 1, 3)).toBe(1);
    expect(moveSelection(2, 1, 3)).toBe(0);
    expect(moveSelection(0, -1, 3)).toBe(2);
    expect(moveSelection(-1, 1, 3)).toBe(0);
    expect(moveSelection(-1, -1, 3)).toBe(2);
    expect(moveSelection(0, 1, 0)).toBe(-1);
  });
  it("inserts with Enter or Tab and closes with Escape", () => {
    expect(suggestionKey("ArrowDown")).toEqual({ type: "move", delta: 1 });
    expect(suggestionKey("ArrowUp")).toEqual({ type: "move", delta: -1 });
    expect(suggestionKey("Enter")).toEqual({ type: "insert" });
    expect(suggestionKey("Tab")).toEqual({ type: "insert" });
    expect(suggestionKey("Escape")).toEqual({ type: "close" });
    expect(suggestionKey("a")).toBeNull();
  });
  it("leaves Shift+Enter and keys of an input method composition alone", () => {
    expect(suggestionKey("Enter", { shift: true })).toBeNull();
    expect(suggestionKey("Enter", { composing: true })).toBeNull();
  });
});

describe("fillPlaceholders", () => {
  it("fills in the customer's and the agent's names", () => {
    expect(fillPlaceholders("Hi {{customer.name}}, {{agent.name}} here. Bye {{ customer.name }}!", { customerName: "Ann", agentName: "Alice" })).toBe(
      "Hi Ann, Alice here. Bye Ann!",
    );
  });
  it("leaves unknown placeholders as they were typed", () => {
    expect(fillPlaceholders("Order {{order.id}}", { customerName: "Ann", agentName: "Alice" })).toBe("Order {{order.id}}");
  });
  it("does not read names as replacement patterns", () => {
    expect(fillPlaceholders("Hi {{customer.name}}", { customerName: "$& $1", agentName: "" })).toBe("Hi $& $1");
  });
});

describe("the manager's rules", () => {
  it("turns what was typed into a shortcut with its slash", () => {
    expect(normalizeShortcut(" Refund ")).toBe("/refund");
    expect(normalizeShortcut("/thanks")).toBe("/thanks");
    expect(SHORTCUT_RE.test("/refund_2-b")).toBe(true);
    expect(SHORTCUT_RE.test("/")).toBe(false);
    expect(SHORTCUT_RE.test("/has space")).toBe(false);
  });
  it("lets only admins change shared replies", () => {
    expect(canEditReply(reply("1", "/a"), false)).toBe(true);
    expect(canEditReply(reply("2", "/b", true), false)).toBe(false);
    expect(canEditReply(reply("2", "/b", true), true)).toBe(true);
  });
});
