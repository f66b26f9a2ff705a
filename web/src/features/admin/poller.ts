// Refreshing on a rhythm: run now, then again `intervalMs` after each run ends (so a slow server is
// never asked twice at once), paused while the page is hidden, and on demand.

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface Poller {
  /** Runs now, then every interval. Does nothing when already polling. */
  resume(): void;
  /** No more scheduled runs; a run under way still finishes. */
  pause(): void;
  /**
   * Runs now, or once more right after the run under way (several calls share that one run), and
   * restarts the interval from there. Resolves when that run has ended.
   */
  refresh(): Promise<void>;
  readonly polling: boolean;
}

const realTimers: Timers = {
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (h) => globalThis.clearTimeout(h as ReturnType<typeof setTimeout>),
};

export function createPoller(run: () => Promise<unknown>, intervalMs: number, timers: Timers = realTimers): Poller {
  let active = false;
  let timer: unknown = null;
  let current: Promise<void> | null = null;
  let next: Promise<void> | null = null;

  function clear() {
    if (timer !== null) timers.clearTimeout(timer);
    timer = null;
  }

  function schedule() {
    clear();
    if (active) timer = timers.setTimeout(() => void refresh(), intervalMs);
  }

  function start(): Promise<void> {
    clear();
    const p = Promise.resolve()
      .then(run)
      .then(
        () => undefined,
        () => undefined,
      )
      .then(() => {
        current = null;
        schedule();
      });
    current = p;
    return p;
  }

  function refresh(): Promise<void> {
    if (!current) return start();
    if (!next) {
      next = current.then(() => {
        next = null;
        return start();
      });
    }
    return next;
  }

  return {
    resume() {
      if (active) return;
      active = true;
      void refresh();
    },
    pause() {
      active = false;
      clear();
    },
    refresh,
    get polling() {
      return active;
    },
  };
}
