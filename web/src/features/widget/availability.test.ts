import { describe, expect, it } from "vitest";
import type { Availability } from "../../shared/offline";
import { clockTime, opensAtParts, requestedAgentWait, widgetView } from "./availability";

const base: Availability = { state: "open", agentsAvailable: 2, queueLength: 0, estimateSeconds: null, opensAt: null, timeZone: "Asia/Shanghai", mail: true };
const at = (a: Partial<Availability>) => ({ ...base, ...a });
const situation = { availability: base, hasAgent: false, queued: false, leftOffline: false };

describe("widgetView", () => {
  it("chats as usual while agents have room", () => {
    expect(widgetView(situation)).toEqual({ kind: "chat" });
  });

  it("works as it always did when availability is not known", () => {
    expect(widgetView({ ...situation, availability: null })).toEqual({ kind: "chat" });
    expect(widgetView({ ...situation, availability: null, queued: true })).toEqual({ kind: "queue" });
  });

  it("tells a newcomer the real wait when every agent is full", () => {
    expect(widgetView({ ...situation, availability: at({ state: "busy", queueLength: 2, estimateSeconds: 150 }) })).toEqual({
      kind: "busy",
      place: 3,
      waitMinutes: 3,
    });
    expect(widgetView({ ...situation, availability: at({ state: "busy", queueLength: 0, estimateSeconds: null }) })).toEqual({
      kind: "busy",
      place: 1,
      waitMinutes: null,
    });
  });

  it("shows the place from queue_position once the customer waits in line", () => {
    expect(widgetView({ ...situation, queued: true, availability: at({ state: "busy", estimateSeconds: 60 }) })).toEqual({ kind: "queue" });
  });

  it("never promises a place in line when nobody is available", () => {
    for (const queued of [false, true]) {
      expect(widgetView({ ...situation, queued, availability: at({ state: "away", agentsAvailable: 0 }) })).toEqual({
        kind: "offline",
        reason: "away",
        opensAt: null,
        timeZone: "Asia/Shanghai",
      });
    }
  });

  it("offers the form with the next opening outside business hours", () => {
    expect(widgetView({ ...situation, availability: at({ state: "closed", opensAt: 1_765_000_000_000 }) })).toEqual({
      kind: "offline",
      reason: "closed",
      opensAt: 1_765_000_000_000,
      timeZone: "Asia/Shanghai",
    });
  });

  it("leaves the conversation to its agent, whatever the shop's state", () => {
    expect(widgetView({ ...situation, hasAgent: true, availability: at({ state: "closed" }) })).toEqual({ kind: "chat" });
  });

  it("says a message left offline is waiting instead of asking for it again", () => {
    expect(widgetView({ ...situation, leftOffline: true, queued: true, availability: at({ state: "away" }) })).toEqual({ kind: "left" });
  });
});

describe("opensAtParts", () => {
  // Monday 2026-12-07 01:00 UTC = 09:00 in Shanghai, Sunday 17:00 in Los Angeles.
  const opens = Date.UTC(2026, 11, 7, 1, 0);
  const now = Date.UTC(2026, 11, 6, 20, 0); // Sunday 20:00 UTC = Monday 04:00 Shanghai, Sunday 12:00 LA

  it("shows the visitor's time and the shop's when they differ", () => {
    const p = opensAtParts(opens, "Asia/Shanghai", "en", now, "America/Los_Angeles");
    expect(p?.local).toEqual({ day: "today", date: "", time: "17:00", timeZone: "America/Los_Angeles" });
    expect(p?.shop).toEqual({ day: "today", date: "", time: "09:00", timeZone: "Asia/Shanghai" });
  });

  it("says tomorrow where the opening falls on the next day of that zone", () => {
    const p = opensAtParts(opens, "Asia/Shanghai", "en", now, "Europe/London");
    expect(p?.local).toMatchObject({ day: "tomorrow", time: "01:00" });
    expect(p?.shop).toMatchObject({ day: "today", time: "09:00" });
  });

  it("shows the date when the opening is days away", () => {
    const p = opensAtParts(opens + 3 * 86_400_000, "Asia/Shanghai", "en", now, "Asia/Shanghai");
    expect(p?.local.day).toBeNull();
    expect(p?.local.date).toBe("Thu, Dec 10");
    expect(p?.shop).toBeNull();
  });

  it("shows one time when the visitor is in the shop's zone, or reads the same clock", () => {
    expect(opensAtParts(opens, "Asia/Shanghai", "en", now, "Asia/Shanghai")?.shop).toBeNull();
    expect(opensAtParts(opens, "Asia/Shanghai", "en", now, "Asia/Taipei")?.shop).toBeNull();
  });

  it("has nothing to say without a scheduled opening", () => {
    expect(opensAtParts(null, "Asia/Shanghai", "en", now, "UTC")).toBeNull();
  });

  it("falls back to UTC for a zone the browser does not know, and drops an unknown shop zone", () => {
    const p = opensAtParts(opens, "Mars/Olympus", "en", now, "Nowhere/Else");
    expect(p?.local).toMatchObject({ time: "01:00", timeZone: "UTC" });
    expect(p?.shop).toBeNull();
  });

  it("formats in Chinese", () => {
    const p = opensAtParts(opens + 3 * 86_400_000, "Asia/Shanghai", "zh-CN", now, "Asia/Shanghai");
    expect(p?.local.time).toBe("09:00");
    expect(p?.local.date).toContain("12月10日");
  });
});

describe("requestedAgentWait", () => {
  const now = Date.UTC(2026, 11, 7, 6, 0);
  it("says until when an offline agent is waited for", () => {
    expect(requestedAgentWait({ id: "5", displayName: "Alice", online: false, waitsUntil: now + 120_000 }, now)).toEqual({ waitsUntil: now + 120_000 });
    expect(clockTime(now + 300_000, "en", "Asia/Shanghai")).toBe("14:05");
  });
  it("says nothing when the agent is online, was not asked for, or the wait is over", () => {
    expect(requestedAgentWait({ id: "5", displayName: "Alice", online: true, waitsUntil: null }, now)).toBeNull();
    expect(requestedAgentWait(null, now)).toBeNull();
    expect(requestedAgentWait({ id: "5", displayName: "Alice", online: false, waitsUntil: now - 1 }, now)).toBeNull();
  });
});
