// The chat's availability reads: at once when open, every 30 s while open, on demand, never two at
// once, nothing while closed, and the last answer kept when a read fails.
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { nextTick, ref } from "vue";
import type { Availability } from "../../shared/offline";
import { useAvailability } from "./useAvailability";

const away: Availability = { state: "away", agentsAvailable: 0, queueLength: 0, estimateSeconds: null, opensAt: null, timeZone: "UTC", mail: true };

describe("useAvailability", () => {
  let answers: Array<() => Response>;
  let calls: number;
  let pending: Array<(r: Response) => void>;
  beforeEach(() => {
    vi.useFakeTimers();
    calls = 0;
    pending = [];
    answers = [];
    vi.stubGlobal("fetch", (url: string) => {
      expect(url).toBe("/api/availability");
      calls++;
      const next = answers.shift();
      if (next) return Promise.resolve(next());
      return new Promise<Response>((resolve) => pending.push(resolve));
    });
  });
  afterEach(() => {
    vi.useRealTimers();
    vi.unstubAllGlobals();
  });
  const ok = (a: Availability) => () => new Response(JSON.stringify(a), { status: 200 });
  const settle = async () => {
    for (let i = 0; i < 5; i++) await vi.advanceTimersByTimeAsync(0);
  };

  it("reads at once when open and every 30 s after, and stops when closed", async () => {
    answers = [ok(away), ok({ ...away, state: "open", agentsAvailable: 1 }), ok(away)];
    const active = ref(true);
    const a = useAvailability(active);
    await settle();
    expect(calls).toBe(1);
    expect(a.availability.value?.state).toBe("away");
    await vi.advanceTimersByTimeAsync(30_000);
    expect(calls).toBe(2);
    expect(a.availability.value?.state).toBe("open");
    active.value = false;
    await nextTick();
    await vi.advanceTimersByTimeAsync(120_000);
    expect(calls).toBe(2);
  });

  it("asks nothing while closed, and at once when opened", async () => {
    answers = [ok(away)];
    const active = ref(false);
    useAvailability(active);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(calls).toBe(0);
    active.value = true;
    await nextTick();
    await settle();
    expect(calls).toBe(1);
  });

  it("never asks twice at once: a refresh during a read reads once more after it", async () => {
    const a = useAvailability(ref(true));
    expect(calls).toBe(1);
    void a.refresh();
    void a.refresh();
    expect(calls).toBe(1);
    answers = [ok({ ...away, state: "busy", estimateSeconds: 60 })];
    pending.shift()!(ok(away)());
    await settle();
    expect(calls).toBe(2);
    expect(a.availability.value?.state).toBe("busy");
  });

  it("keeps the last answer when a read fails", async () => {
    answers = [ok(away), () => new Response("", { status: 502 })];
    const a = useAvailability(ref(true));
    await settle();
    await vi.advanceTimersByTimeAsync(30_000);
    expect(calls).toBe(2);
    expect(a.availability.value?.state).toBe("away");
  });
});
