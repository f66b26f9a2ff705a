import { describe, expect, it } from "vitest";
import type { AdminConversation } from "../../shared/protocol";
import { appendPage, conversationQuery, conversationRow, formatWhen, isStatusFilter, PAGE_SIZE, searchTerm, stars } from "./conversations";

function conv(id: string, over: Partial<AdminConversation> = {}): AdminConversation {
  return {
    id,
    status: "resolved",
    messages: 12,
    rating: 5,
    customer: { id: "7", displayName: "Ann", username: "visitor-7f3a9c2d", email: "ann@shop.example" },
    agent: { id: "3", displayName: "Alice" },
    createdAt: "2026-11-26T04:15:22.123Z",
    resolvedAt: "2026-11-26T04:31:02.000Z",
    offline: false,
    endedAs: null,
    ...over,
  };
}
/** Intl may put a narrow no-break space where a space was. */
const plain = (s: string) => s.replace(/[\s\u202f]+/g, " ");

describe("searchTerm", () => {
  it("trims and keeps single spaces", () => {
    expect(searchTerm("  Ann   Lee ")).toBe("Ann Lee");
  });
  it("takes an id as the list writes it", () => {
    expect(searchTerm(" #41 ")).toBe("41");
    expect(searchTerm("#ann")).toBe("#ann");
  });
});

describe("conversationQuery", () => {
  it("asks for a page of every conversation by default", () => {
    expect(conversationQuery({ q: "", status: "all" })).toBe(`?limit=${PAGE_SIZE}`);
  });
  it("sends the text, the status and the cursor", () => {
    expect(conversationQuery({ q: " ann@shop.example ", status: "open", before: "41", limit: 10 })).toBe(
      "?q=ann%40shop.example&status=open&before=41&limit=10",
    );
  });
  it("encodes what the user typed, wildcards included (the server takes them literally)", () => {
    expect(conversationQuery({ q: "50%_off & more", status: "resolved" })).toBe(`?q=50%25_off+%26+more&status=resolved&limit=${PAGE_SIZE}`);
  });
  it("searches an id without its #", () => {
    expect(conversationQuery({ q: "#41", status: "all" })).toBe(`?q=41&limit=${PAGE_SIZE}`);
  });
});

describe("isStatusFilter", () => {
  it("accepts the three filters only", () => {
    expect(["all", "open", "resolved"].every(isStatusFilter)).toBe(true);
    expect(isStatusFilter("closed")).toBe(false);
    expect(isStatusFilter(null)).toBe(false);
  });
});

describe("appendPage", () => {
  it("adds the next page after the rows shown, each conversation once", () => {
    const out = appendPage([conv("9"), conv("8")], [conv("8"), conv("7")]);
    expect(out.map((c) => c.id)).toEqual(["9", "8", "7"]);
  });
});

describe("conversationRow", () => {
  it("shows the customer, the agent, the times, the rating and the messages", () => {
    const row = conversationRow(conv("41"), "en", "UTC");
    expect(row).toMatchObject({
      id: "41",
      label: "#41",
      customerName: "Ann",
      contact: "ann@shop.example",
      agentName: "Alice",
      status: "resolved",
      rating: 5,
      messages: 12,
    });
    expect(plain(row.started)).toBe("Nov 26, 2026, 04:15");
    expect(plain(row.resolved!)).toBe("Nov 26, 2026, 04:31");
  });
  it("shows the user name of a customer without an e-mail or a name", () => {
    const row = conversationRow(conv("1", { customer: { id: "2", displayName: " ", username: "visitor-1" } }), "en", "UTC");
    expect(row.customerName).toBe("visitor-1");
    expect(row.contact).toBe("visitor-1");
  });
  it("has no agent while queued, no end while open, and no rating until rated", () => {
    const row = conversationRow(conv("2", { status: "open", agent: null, resolvedAt: null, rating: null }), "en", "UTC");
    expect(row.agentName).toBeNull();
    expect(row.resolved).toBeNull();
    expect(row.rating).toBeNull();
  });
  it("writes the times in the reader's language", () => {
    expect(plain(formatWhen("2026-11-26T04:15:22.123Z", "zh-CN", "UTC"))).toBe("2026年11月26日 04:15");
  });
});

describe("stars", () => {
  it("fills as many stars as the rating", () => {
    expect(stars(4)).toBe("★★★★☆");
    expect(stars(9)).toBe("★★★★★");
  });
});
