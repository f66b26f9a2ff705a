import { describe, expect, it } from "vitest";
import type { NodeSummary } from "../../shared/protocol";
import { formatUptime, nodeTotals, sortNodes, uptimeMs } from "./nodes";

const S = 1000;
const M = 60 * S;
const H = 60 * M;
const D = 24 * H;

describe("uptimeMs", () => {
  const started = "2026-11-26T04:15:22.123Z";
  it("is the time since startedAt", () => {
    expect(uptimeMs(started, Date.parse(started) + 90 * S)).toBe(90 * S);
  });
  it("is never negative when the server's clock is ahead of ours", () => {
    expect(uptimeMs(started, Date.parse(started) - 5 * S)).toBe(0);
  });
  it("is 0 for a date it cannot read", () => {
    expect(uptimeMs("yesterday", Date.now())).toBe(0);
  });
});

describe("formatUptime", () => {
  it("shows the two largest units", () => {
    expect(formatUptime(0, "en")).toBe("0s");
    expect(formatUptime(42 * S + 999, "en")).toBe("42s");
    expect(formatUptime(12 * M + 5 * S, "en")).toBe("12m 05s");
    expect(formatUptime(5 * H + 3 * M + 59 * S, "en")).toBe("5h 03m");
    expect(formatUptime(3 * D + 4 * H + 59 * M, "en")).toBe("3d 4h");
    expect(formatUptime(400 * D, "en")).toBe("400d 0h");
  });
  it("speaks Chinese", () => {
    expect(formatUptime(42 * S, "zh-CN")).toBe("42秒");
    expect(formatUptime(12 * M + 5 * S, "zh-CN")).toBe("12分05秒");
    expect(formatUptime(5 * H + 3 * M, "zh-CN")).toBe("5小时03分");
    expect(formatUptime(3 * D + 4 * H, "zh-CN")).toBe("3天4小时");
  });
  it("treats a negative duration as zero", () => {
    expect(formatUptime(-5 * S, "en")).toBe("0s");
  });
});

describe("nodes", () => {
  const node = (id: string, n: number): NodeSummary => ({
    id,
    startedAt: "2026-11-26T04:15:22.123Z",
    connections: n,
    onlineUsers: n + 1,
    onlineAgents: n + 2,
    openConversations: n + 3,
  });
  it("adds up what every node holds", () => {
    expect(nodeTotals([node("a", 1), node("b", 10)])).toEqual({ connections: 11, onlineUsers: 13, onlineAgents: 15, openConversations: 17 });
  });
  it("keeps nodes in a stable order", () => {
    expect(sortNodes([node("web-2", 0), node("web-1", 0)]).map((n) => n.id)).toEqual(["web-1", "web-2"]);
  });
});
