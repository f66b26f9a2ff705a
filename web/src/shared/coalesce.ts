// Coalescing work that many events ask for: the server's `resync` (sent to many clients at once, so
// each waits a random moment) and the fetch that fills a gap in one conversation (a burst of live
// messages must not start a burst of fetches).

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

const realTimers: Timers = {
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (h) => globalThis.clearTimeout(h as ReturnType<typeof setTimeout>),
};

export interface CoalescerOptions<T> {
  /** Folds a request into the one already waiting. Default: the waiting one stays as it is. */
  merge?: (waiting: T, next: T) => T;
  /** How long to wait before each run (e.g. a random jitter). Default 0: on the next turn. */
  delayMs?: () => number;
  timers?: Timers;
}

export interface Coalescer<T> {
  /**
   * Asks for a run. Idle: the run starts after the delay. Waiting for the delay: folded into that
   * run. Running: folded into the one run after it. Resolves when the run that covers it has ended.
   */
  request(arg: T): Promise<void>;
  /** Drops the waiting requests (their promises resolve); a run under way still finishes. */
  cancel(): void;
  /** Nothing waiting and nothing running. */
  readonly idle: boolean;
}

interface Batch<T> {
  arg: T;
  resolve: () => void;
  done: Promise<void>;
}

function batch<T>(arg: T): Batch<T> {
  let resolve!: () => void;
  const done = new Promise<void>((r) => (resolve = r));
  return { arg, resolve, done };
}

/** At most one run at a time, and at most one more waiting, however many requests come. */
export function createCoalescer<T>(run: (arg: T) => Promise<unknown>, opts: CoalescerOptions<T> = {}): Coalescer<T> {
  const timers = opts.timers ?? realTimers;
  const merge = opts.merge ?? ((waiting: T) => waiting);
  /** The next run: waiting for its timer, or for the run under way to end. */
  let next: Batch<T> | null = null;
  let timer: unknown = null;
  let running = false;

  function schedule() {
    timer = timers.setTimeout(() => {
      timer = null;
      void start();
    }, Math.max(0, opts.delayMs?.() ?? 0));
  }

  async function start() {
    const b = next;
    if (!b) return;
    next = null;
    running = true;
    try {
      await run(b.arg);
    } catch {
      // The run reports its own failures; the next request tries again.
    } finally {
      running = false;
      b.resolve();
      if (next) schedule();
    }
  }

  return {
    request(arg) {
      if (next) {
        next.arg = merge(next.arg, arg);
        return next.done;
      }
      next = batch(arg);
      const done = next.done;
      if (!running) schedule();
      return done;
    },
    cancel() {
      if (timer !== null) timers.clearTimeout(timer);
      timer = null;
      next?.resolve();
      next = null;
    },
    get idle() {
      return !running && next === null;
    },
  };
}

export interface KeyedCoalescer<K, T> {
  /** {@link Coalescer.request} for the coalescer of `key`; different keys run independently. */
  request(key: K, arg: T): Promise<void>;
  cancel(): void;
}

/** One {@link createCoalescer} per key (e.g. per conversation), forgotten once idle. */
export function createKeyedCoalescer<K, T>(
  run: (key: K, arg: T) => Promise<unknown>,
  opts: CoalescerOptions<T> = {},
): KeyedCoalescer<K, T> {
  const byKey = new Map<K, Coalescer<T>>();
  return {
    request(key, arg) {
      let c = byKey.get(key);
      if (!c) {
        c = createCoalescer((a: T) => run(key, a), opts);
        byKey.set(key, c);
      }
      const mine = c;
      return mine.request(arg).then(() => {
        if (mine.idle && byKey.get(key) === mine) byKey.delete(key);
      });
    },
    cancel() {
      byKey.forEach((c) => c.cancel());
      byKey.clear();
    },
  };
}
