import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { createPoller } from "./poller";

/** A run that stays under way until released, counting how many run at once. */
function controlledRun() {
  const state = { calls: 0, active: 0, maxActive: 0, release: [] as Array<() => void>, fail: false };
  const run = () => {
    state.calls++;
    state.active++;
    state.maxActive = Math.max(state.maxActive, state.active);
    return new Promise<void>((resolve, reject) => {
      state.release.push(() => {
        state.active--;
        if (state.fail) reject(new Error("down"));
        else resolve();
      });
    });
  };
  const finish = async () => {
    state.release.shift()?.();
    await vi.advanceTimersByTimeAsync(0);
  };
  return { state, run, finish };
}

describe("createPoller", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("runs at once, then again an interval after each run ends", async () => {
    const { state, run, finish } = controlledRun();
    const p = createPoller(run, 5000);
    p.resume();
    await vi.advanceTimersByTimeAsync(0);
    expect(state.calls).toBe(1);
    // A slow run: the next one waits for it.
    await vi.advanceTimersByTimeAsync(12_000);
    expect(state.calls).toBe(1);
    await finish();
    await vi.advanceTimersByTimeAsync(4999);
    expect(state.calls).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(state.calls).toBe(2);
    p.pause();
  });

  it("stops while paused and runs at once when resumed", async () => {
    const { state, run, finish } = controlledRun();
    const p = createPoller(run, 5000);
    p.resume();
    await vi.advanceTimersByTimeAsync(0);
    await finish();
    p.pause();
    expect(p.polling).toBe(false);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(state.calls).toBe(1);
    p.resume();
    await vi.advanceTimersByTimeAsync(0);
    expect(state.calls).toBe(2);
  });

  it("a run under way when paused does not schedule another", async () => {
    const { state, run, finish } = controlledRun();
    const p = createPoller(run, 5000);
    p.resume();
    await vi.advanceTimersByTimeAsync(0);
    p.pause();
    await finish();
    await vi.advanceTimersByTimeAsync(60_000);
    expect(state.calls).toBe(1);
  });

  it("refreshes on demand once after the run under way, never two at once", async () => {
    const { state, run, finish } = controlledRun();
    const p = createPoller(run, 5000);
    p.resume();
    await vi.advanceTimersByTimeAsync(0);
    const a = p.refresh();
    const b = p.refresh();
    expect(a).toBe(b);
    await finish();
    expect(state.calls).toBe(2);
    let done = false;
    void a.then(() => (done = true));
    await vi.advanceTimersByTimeAsync(0);
    expect(done).toBe(false);
    await finish();
    expect(done).toBe(true);
    expect(state.maxActive).toBe(1);
    // The interval restarts from the refresh.
    await vi.advanceTimersByTimeAsync(4999);
    expect(state.calls).toBe(2);
    await vi.advanceTimersByTimeAsync(1);
    expect(state.calls).toBe(3);
    p.pause();
  });

  it("keeps polling after a failed run", async () => {
    const { state, run, finish } = controlledRun();
    state.fail = true;
    const p = createPoller(run, 1000);
    p.resume();
    await vi.advanceTimersByTimeAsync(0);
    await finish();
    await vi.advanceTimersByTimeAsync(1000);
    expect(state.calls).toBe(2);
    p.pause();
  });

  it("refreshes on demand while paused without starting to poll", async () => {
    const { state, run, finish } = controlledRun();
    const p = createPoller(run, 1000);
    const done = p.refresh();
    await vi.advanceTimersByTimeAsync(0);
    await finish();
    await done;
    await vi.advanceTimersByTimeAsync(10_000);
    expect(state.calls).toBe(1);
  });
});
