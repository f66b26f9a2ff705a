import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createCoalescer, createKeyedCoalescer } from "./coalesce";

/** A run that stays under way until the test ends it. */
function controlledRun<T>() {
  const calls: T[] = [];
  const ends: Array<() => void> = [];
  const run = (arg: T) => {
    calls.push(arg);
    return new Promise<void>((r) => ends.push(r));
  };
  const endRun = async () => {
    ends.shift()?.();
    await vi.advanceTimersByTimeAsync(0);
  };
  return { calls, run, endRun };
}

describe("createCoalescer", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("waits the delay before running", async () => {
    const { calls, run } = controlledRun<string>();
    const c = createCoalescer(run, { delayMs: () => 1500 });
    void c.request("a");
    await vi.advanceTimersByTimeAsync(1499);
    expect(calls).toEqual([]);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls).toEqual(["a"]);
  });

  it("folds requests that come during the delay into that one run", async () => {
    const { calls, run, endRun } = controlledRun<number>();
    const c = createCoalescer(run, { delayMs: () => 1000, merge: Math.min });
    void c.request(7);
    await vi.advanceTimersByTimeAsync(500);
    void c.request(3);
    void c.request(5);
    await vi.advanceTimersByTimeAsync(2000);
    await endRun();
    await vi.advanceTimersByTimeAsync(5000);
    expect(calls).toEqual([3]);
    expect(c.idle).toBe(true);
  });

  it("runs once more after the run under way, however many requests came during it", async () => {
    const { calls, run, endRun } = controlledRun<number>();
    const c = createCoalescer(run, { merge: Math.min });
    void c.request(1);
    await vi.advanceTimersByTimeAsync(0);
    expect(calls).toEqual([1]);
    for (const n of [9, 4, 6]) void c.request(n);
    await vi.advanceTimersByTimeAsync(1000);
    expect(calls).toEqual([1]);
    await endRun();
    expect(calls).toEqual([1, 4]);
    await endRun();
    await vi.advanceTimersByTimeAsync(1000);
    expect(calls).toEqual([1, 4]);
    expect(c.idle).toBe(true);
  });

  it("waits the delay again before the run after", async () => {
    const { calls, run, endRun } = controlledRun<string>();
    const c = createCoalescer(run, { delayMs: () => 800 });
    void c.request("a");
    await vi.advanceTimersByTimeAsync(800);
    void c.request("b");
    await endRun();
    await vi.advanceTimersByTimeAsync(799);
    expect(calls).toEqual(["a"]);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls).toEqual(["a", "b"]);
  });

  it("resolves a request when the run that covers it has ended", async () => {
    const { run, endRun } = controlledRun<string>();
    const c = createCoalescer(run);
    const first = vi.fn();
    const second = vi.fn();
    void c.request("a").then(first);
    await vi.advanceTimersByTimeAsync(0);
    void c.request("b").then(second);
    await endRun();
    expect(first).toHaveBeenCalled();
    expect(second).not.toHaveBeenCalled();
    await endRun();
    expect(second).toHaveBeenCalled();
  });

  it("keeps going after a failed run", async () => {
    const calls: number[] = [];
    const c = createCoalescer(async (n: number) => {
      calls.push(n);
      throw new Error("timeout");
    });
    await Promise.all([c.request(1), vi.advanceTimersByTimeAsync(0)]);
    await Promise.all([c.request(2), vi.advanceTimersByTimeAsync(0)]);
    expect(calls).toEqual([1, 2]);
  });

  it("cancel drops the waiting run", async () => {
    const { calls, run } = controlledRun<string>();
    const c = createCoalescer(run, { delayMs: () => 1000 });
    const done = c.request("a");
    c.cancel();
    await done;
    await vi.advanceTimersByTimeAsync(5000);
    expect(calls).toEqual([]);
    expect(c.idle).toBe(true);
  });
});

describe("createKeyedCoalescer", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("coalesces per key, and keys run side by side", async () => {
    const calls: Array<[string, number]> = [];
    const ends: Array<() => void> = [];
    const c = createKeyedCoalescer(
      (key: string, n: number) => {
        calls.push([key, n]);
        return new Promise<void>((r) => ends.push(r));
      },
      { merge: Math.min },
    );
    void c.request("8", 3);
    void c.request("9", 10);
    await vi.advanceTimersByTimeAsync(0);
    void c.request("8", 5);
    void c.request("8", 4);
    await vi.advanceTimersByTimeAsync(0);
    expect(calls).toEqual([
      ["8", 3],
      ["9", 10],
    ]);
    ends.shift()?.();
    await vi.advanceTimersByTimeAsync(0);
    expect(calls).toEqual([
      ["8", 3],
      ["9", 10],
      ["8", 4],
    ]);
  });

  it("starts afresh for a key whose runs have all ended", async () => {
    const calls: number[] = [];
    const c = createKeyedCoalescer(async (_key: string, n: number) => void calls.push(n));
    await Promise.all([c.request("8", 1), vi.advanceTimersByTimeAsync(0)]);
    await Promise.all([c.request("8", 2), vi.advanceTimersByTimeAsync(0)]);
    expect(calls).toEqual([1, 2]);
  });
});
