import { describe, expect, it } from "vitest";
import { translate } from "../../shared/i18n";
import type { AgentReport } from "../../shared/protocol";
import {
  abandonOf,
  barHeights,
  csatText,
  durationText,
  fillDays,
  niceMax,
  sortAgentReports,
} from "./reports";

const say = (seconds: number) => {
  const d = durationText(seconds);
  return translate("en", d.key, d.params);
};

describe("fillDays", () => {
  it("lists every day of the period, with zero for days without conversations", () => {
    const days = fillDays({
      from: "2026-11-23T00:00:00.000Z",
      to: "2026-11-26T12:00:00.000Z",
      days: [
        { date: "2026-11-26", conversations: 4 },
        { date: "2026-11-24", conversations: 1 },
      ],
    });
    expect(days).toEqual([
      { date: "2026-11-23", conversations: 0 },
      { date: "2026-11-24", conversations: 1 },
      { date: "2026-11-25", conversations: 0 },
      { date: "2026-11-26", conversations: 4 },
    ]);
  });

  it("fills from the first to the last listed day when the period bounds are unusable", () => {
    const days = fillDays({ from: "", to: "", days: [{ date: "2026-11-26", conversations: 2 }, { date: "2026-11-20", conversations: 1 }] });
    expect(days.map((d) => d.date)).toEqual(["2026-11-20", "2026-11-21", "2026-11-22", "2026-11-23", "2026-11-24", "2026-11-25", "2026-11-26"]);
  });
});

describe("barHeights", () => {
  it("scales bars to the busiest day and keeps small days visible", () => {
    expect(barHeights([{ date: "a", conversations: 0 }, { date: "b", conversations: 100 }, { date: "c", conversations: 1 }])).toEqual([0, 100, 2]);
  });
  it("draws no bar when nothing happened", () => {
    expect(barHeights([{ date: "a", conversations: 0 }])).toEqual([0]);
  });
  it("rounds the scale up to a nice number", () => {
    expect([1, 3, 7, 12, 51].map(niceMax)).toEqual([1, 5, 10, 20, 100]);
  });
});

describe("durationText", () => {
  it("reads seconds, minutes, hours and days the way people say them", () => {
    expect(say(42.4)).toBe("42 s");
    expect(say(200)).toBe("3 min 20 s");
    expect(say(1490)).toBe("25 min");
    expect(say(3900)).toBe("1 h 5 min");
    expect(say(2 * 86400 + 3 * 3600)).toBe("2 d 3 h");
  });
});

describe("csatText", () => {
  it("shows the average with one decimal", () => {
    expect(csatText({ average: 4, count: 1 })).toBe("4.0");
    expect(csatText({ average: 4.666, count: 3 })).toBe("4.7");
  });
  it("shows nothing without ratings", () => {
    expect(csatText(null)).toBeNull();
    expect(csatText({ average: 0, count: 0 })).toBeNull();
  });
});

describe("sortAgentReports", () => {
  const r = (id: string, displayName: string, conversations: number): AgentReport => ({
    agent: { id, role: "agent", username: displayName.toLowerCase(), displayName },
    conversations,
    resolved: 0,
    firstResponseSeconds: null,
    resolutionSeconds: null,
    csat: null,
  });
  it("puts the busiest agents first, then sorts by name", () => {
    const out = sortAgentReports([r("1", "Bob", 2), r("2", "alice", 2), r("3", "Cleo", 9)], "en");
    expect(out.map((a) => a.agent.displayName)).toEqual(["Cleo", "alice", "Bob"]);
  });
});

describe("abandonOf", () => {
  it("is the count and the median wait before abandoning", () => {
    expect(abandonOf({ abandoned: 3, abandonWaitSeconds: 240 })).toEqual({ count: 3, waitSeconds: 240 });
    expect(abandonOf({ abandoned: 0, abandonWaitSeconds: null })).toEqual({ count: 0, waitSeconds: null });
  });
  it("is null when the server does not report it", () => {
    expect(abandonOf({})).toBeNull();
  });
});
