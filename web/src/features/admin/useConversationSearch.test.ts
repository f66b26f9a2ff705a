import { describe, expect, it, vi } from "vitest";
import { ApiError } from "../../shared/api";
import type { AdminConversation, AdminConversationsResponse } from "../../shared/protocol";
import { useConversationSearch } from "./useConversationSearch";

function conv(id: string): AdminConversation {
  return {
    id,
    status: "open",
    messages: 1,
    rating: null,
    customer: { id: "7", displayName: "Ann", username: "visitor-7" },
    agent: null,
    createdAt: "2026-11-26T04:15:22.123Z",
    resolvedAt: null,
    offline: false,
    endedAs: null,
  };
}

/** A server whose answers the test releases one by one. */
function deferredServer() {
  const calls: Array<{ query: string; answer: (r: AdminConversationsResponse) => void; fail: (e: unknown) => void }> = [];
  const fetchPage = (query: string) =>
    new Promise<AdminConversationsResponse>((answer, fail) => {
      calls.push({ query, answer, fail });
    });
  return { calls, fetchPage };
}
const flush = () => new Promise((r) => setTimeout(r, 0));

describe("useConversationSearch", () => {
  it("shows the answer to the latest search, not a slower earlier one", async () => {
    const server = deferredServer();
    const s = useConversationSearch(server.fetchPage, vi.fn());
    const first = s.search("an", "all");
    const second = s.search("ann", "open");
    server.calls[1]!.answer({ conversations: [conv("2")] });
    await second;
    server.calls[0]!.answer({ conversations: [conv("1")] });
    await first;
    expect(s.items.value.map((c) => c.id)).toEqual(["2"]);
    expect(s.shown.value).toEqual({ q: "ann", status: "open" });
    expect(s.readAt.value).toBeInstanceOf(Date);
    expect(s.loading.value).toBe(false);
  });

  it("pages on with the cursor of the search shown, and stops when there is no next page", async () => {
    const server = deferredServer();
    const s = useConversationSearch(server.fetchPage, vi.fn());
    const p = s.search("#9", "resolved");
    server.calls[0]!.answer({ conversations: [conv("9")], nextBefore: "9" });
    await p;
    const m = s.more();
    expect(server.calls[1]!.query).toBe("?q=9&status=resolved&before=9&limit=25");
    expect(s.loadingMore.value).toBe(true);
    server.calls[1]!.answer({ conversations: [conv("9"), conv("8")] });
    await m;
    expect(s.items.value.map((c) => c.id)).toEqual(["9", "8"]);
    expect(s.nextBefore.value).toBeNull();
    await s.more();
    expect(server.calls).toHaveLength(2);
  });

  it("drops a page that arrives after a new search", async () => {
    const server = deferredServer();
    const s = useConversationSearch(server.fetchPage, vi.fn());
    const p = s.search("", "all");
    server.calls[0]!.answer({ conversations: [conv("5")], nextBefore: "5" });
    await p;
    const m = s.more();
    const again = s.search("bo", "all");
    server.calls[1]!.answer({ conversations: [conv("4")] });
    await m;
    server.calls[2]!.answer({ conversations: [conv("3")] });
    await again;
    expect(s.items.value.map((c) => c.id)).toEqual(["3"]);
  });

  it("keeps the rows on a failure and says why; signs out when the token cannot administer", async () => {
    const server = deferredServer();
    const signOut = vi.fn();
    const s = useConversationSearch(server.fetchPage, signOut);
    const p = s.search("", "all");
    server.calls[0]!.answer({ conversations: [conv("5")] });
    await p;
    const failing = s.search("x", "all");
    server.calls[1]!.fail(new ApiError(0, "network", "down"));
    await failing;
    expect(s.items.value.map((c) => c.id)).toEqual(["5"]);
    expect(s.error.value).toBe("admin.unreachable");
    const refused = s.search("x", "all");
    server.calls[2]!.fail(new ApiError(403, "forbidden", "no"));
    await refused;
    await flush();
    expect(signOut).toHaveBeenCalledWith("notAdmin");
  });
});
