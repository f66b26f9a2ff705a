import { describe, expect, it, vi } from "vitest";
import {
  frameLoadFor,
  IDLE_FALLBACK_MS,
  IDLE_TIMEOUT_MS,
  OPEN_CONVERSATION_KEY,
  pageStorage,
  rememberConversation,
  whenIdle,
  type FlagStorage,
  type IdleHost,
} from "./frameLoading";

const KEFU = "https://help.shop.example";

function memoryStorage(): FlagStorage & { data: Map<string, string> } {
  const data = new Map<string, string>();
  return {
    data,
    getItem: (k) => data.get(k) ?? null,
    setItem: (k, v) => void data.set(k, v),
    removeItem: (k) => void data.delete(k),
  };
}
const broken: FlagStorage = {
  getItem: () => {
    throw new Error("SecurityError");
  },
  setItem: () => {
    throw new Error("QuotaExceededError");
  },
  removeItem: () => {
    throw new Error("SecurityError");
  },
};

describe("frameLoadFor", () => {
  it("waits for the bubble on a first visit", () => {
    expect(frameLoadFor(memoryStorage(), KEFU)).toBe("on-open");
  });
  it("loads in the background for a visitor whose chat said it has an open conversation", () => {
    const s = memoryStorage();
    rememberConversation(s, KEFU, true);
    expect(frameLoadFor(s, KEFU)).toBe("when-idle");
  });
  it("waits again once the chat said the conversation ended or the session is gone", () => {
    const s = memoryStorage();
    rememberConversation(s, KEFU, true);
    rememberConversation(s, KEFU, false);
    expect(frameLoadFor(s, KEFU)).toBe("on-open");
    expect(s.data.size).toBe(0);
  });
  it("counts only a conversation with this kefu server", () => {
    const s = memoryStorage();
    rememberConversation(s, "https://old-help.shop.example", true);
    expect(frameLoadFor(s, KEFU)).toBe("on-open");
    // Nor does this server's "no conversation" forget the other one's.
    rememberConversation(s, KEFU, false);
    expect(s.data.get(OPEN_CONVERSATION_KEY)).toBe("https://old-help.shop.example");
  });
  it("waits for the bubble when the page's storage cannot be used, and never throws", () => {
    expect(frameLoadFor(null, KEFU)).toBe("on-open");
    expect(frameLoadFor(broken, KEFU)).toBe("on-open");
    expect(() => rememberConversation(broken, KEFU, true)).not.toThrow();
    expect(() => rememberConversation(null, KEFU, false)).not.toThrow();
    expect(
      pageStorage(() => {
        throw new Error("SecurityError");
      }),
    ).toBeNull();
  });
});

function host(readyState: DocumentReadyState, idle: boolean) {
  const calls: string[] = [];
  let onLoad: (() => void) | null = null;
  const h: IdleHost = {
    document: { readyState },
    addEventListener: (_type, fn) => {
      calls.push("wait for load");
      onLoad = fn;
    },
    setTimeout: (fn, ms) => {
      calls.push(`timeout ${ms}`);
      fn();
    },
    ...(idle
      ? {
          requestIdleCallback: (fn: () => void, o: { timeout: number }) => {
            calls.push(`idle ${o.timeout}`);
            fn();
          },
        }
      : {}),
  };
  return { h, calls, load: () => onLoad?.() };
}

describe("whenIdle", () => {
  it("waits for the page's load, then for an idle moment (with a deadline)", () => {
    const { h, calls, load } = host("interactive", true);
    const run = vi.fn();
    whenIdle(h, run);
    expect(run).not.toHaveBeenCalled();
    load();
    expect(run).toHaveBeenCalledOnce();
    expect(calls).toEqual(["wait for load", `idle ${IDLE_TIMEOUT_MS}`]);
  });
  it("goes straight to the idle moment on a page already loaded", () => {
    const { h, calls } = host("complete", true);
    const run = vi.fn();
    whenIdle(h, run);
    expect(run).toHaveBeenCalledOnce();
    expect(calls).toEqual([`idle ${IDLE_TIMEOUT_MS}`]);
  });
  it("uses a short timer where there is no requestIdleCallback", () => {
    const { h, calls, load } = host("loading", false);
    const run = vi.fn();
    whenIdle(h, run);
    load();
    expect(run).toHaveBeenCalledOnce();
    expect(calls).toEqual(["wait for load", `timeout ${IDLE_FALLBACK_MS}`]);
  });
});
