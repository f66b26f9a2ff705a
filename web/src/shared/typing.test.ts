import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createTypingSender } from "./typing";

describe("createTypingSender", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("sends true once per burst of keystrokes, then false after a pause", () => {
    const sent: boolean[] = [];
    const s = createTypingSender({ send: (t) => sent.push(t), idleMs: 3000, resendMs: 4000, now: () => Date.now() });
    s.input();
    vi.advanceTimersByTime(500);
    s.input();
    s.input();
    expect(sent).toEqual([true]);
    vi.advanceTimersByTime(3000);
    expect(sent).toEqual([true, false]);
  });

  it("repeats true while the user keeps typing, so the indicator does not go stale", () => {
    const sent: boolean[] = [];
    const s = createTypingSender({ send: (t) => sent.push(t), idleMs: 3000, resendMs: 4000, now: () => Date.now() });
    for (let i = 0; i < 10; i++) {
      s.input();
      vi.advanceTimersByTime(1000);
    }
    expect(sent).toEqual([true, true, true]);
  });

  it("stop sends false only if typing was announced", () => {
    const sent: boolean[] = [];
    const s = createTypingSender({ send: (t) => sent.push(t) });
    s.stop();
    expect(sent).toEqual([]);
    s.input();
    s.stop();
    s.stop();
    vi.advanceTimersByTime(10_000);
    expect(sent).toEqual([true, false]);
  });
});
