import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { clearSession, LOGOUT_TIMEOUT_MS, parseSession, saveSession, signOutEverywhere } from "./session";

const user = { id: "12", role: "customer", username: "visitor-1", displayName: "Visitor 1" } as const;
const agent = { id: "3", role: "agent", username: "dana", displayName: "Dana Park" } as const;

describe("parseSession", () => {
  it("reads a stored session", () => {
    expect(parseSession(JSON.stringify({ token: "t", user }))).toEqual({ token: "t", user });
  });
  it("ignores anything malformed", () => {
    expect(parseSession(null)).toBeNull();
    expect(parseSession("{")).toBeNull();
    expect(parseSession(JSON.stringify({ token: "", user }))).toBeNull();
    expect(parseSession(JSON.stringify({ token: "t", user: { ...user, role: "root" } }))).toBeNull();
  });
});

describe("signing out", () => {
  let storage: Map<string, string>;
  const stored = () => parseSession(storage.get("kefu.session.console") ?? null);

  beforeEach(() => {
    storage = new Map();
    vi.stubGlobal("window", {
      localStorage: {
        getItem: (k: string) => storage.get(k) ?? null,
        setItem: (k: string, v: string) => void storage.set(k, v),
        removeItem: (k: string) => void storage.delete(k),
      },
    });
    saveSession("console", { token: "tok", user: agent });
  });
  afterEach(() => {
    vi.useRealTimers();
    vi.unstubAllGlobals();
  });

  it("tells the server first, then forgets the stored session", async () => {
    let storedDuringCall: unknown;
    const fetch = vi.fn(async () => {
      storedDuringCall = stored();
      return new Response(null, { status: 204 });
    });
    vi.stubGlobal("fetch", fetch);
    await signOutEverywhere("console", "tok");
    expect(fetch).toHaveBeenCalledExactlyOnceWith(
      "/api/logout",
      expect.objectContaining({ method: "POST", headers: expect.objectContaining({ authorization: "Bearer tok" }) }),
    );
    expect(storedDuringCall).toEqual({ token: "tok", user: agent });
    expect(stored()).toBeNull();
  });

  it("forgets the session when the server refuses the token it already revoked", async () => {
    vi.stubGlobal(
      "fetch",
      vi.fn(async () => new Response(JSON.stringify({ error: { code: "unauthorized", message: "" } }), { status: 401 })),
    );
    await signOutEverywhere("console", "tok");
    expect(stored()).toBeNull();
  });

  it("forgets the session when the server cannot be reached", async () => {
    vi.stubGlobal(
      "fetch",
      vi.fn(async () => {
        throw new TypeError("Failed to fetch");
      }),
    );
    await signOutEverywhere("console", "tok");
    expect(stored()).toBeNull();
  });

  it("stops waiting for a server that does not answer, and forgets the session", async () => {
    vi.useFakeTimers();
    let signal: AbortSignal | undefined;
    vi.stubGlobal(
      "fetch",
      vi.fn((_path: string, init: RequestInit) => {
        signal = init.signal ?? undefined;
        return new Promise<Response>((_resolve, reject) => signal?.addEventListener("abort", () => reject(signal?.reason)));
      }),
    );
    let done = false;
    const out = signOutEverywhere("console", "tok").then(() => (done = true));
    await vi.advanceTimersByTimeAsync(LOGOUT_TIMEOUT_MS - 1);
    expect(done).toBe(false);
    expect(stored()).not.toBeNull();
    await vi.advanceTimersByTimeAsync(1);
    await out;
    expect(signal?.aborted).toBe(true);
    expect(stored()).toBeNull();
  });

  it("leaves alone a session another tab signed in with since", () => {
    saveSession("console", { token: "newer", user: agent });
    clearSession("console", "tok");
    expect(stored()).toEqual({ token: "newer", user: agent });
    clearSession("console", "newer");
    expect(stored()).toBeNull();
  });
});
