import { afterEach, describe, expect, it, vi } from "vitest";
import { api, ApiError, codeOfBareStatus } from "./api";

function answer(status: number, body: string | null) {
  vi.stubGlobal(
    "fetch",
    vi.fn(async () => new Response(body, { status, headers: body ? { "content-type": "application/json" } : {} })),
  );
}

describe("api", () => {
  afterEach(() => vi.unstubAllGlobals());

  it("sends the token and returns the JSON body", async () => {
    const fetch = vi.fn(async () => new Response(JSON.stringify({ agents: [] }), { status: 200 }));
    vi.stubGlobal("fetch", fetch);
    await expect(api.listAgents("tok")).resolves.toEqual({ agents: [] });
    expect(fetch).toHaveBeenCalledWith("/api/agents", expect.objectContaining({ method: "GET", headers: expect.objectContaining({ authorization: "Bearer tok" }) }));
  });

  it("PATCHes the disabled flag of an account", async () => {
    const fetch = vi.fn(async () => new Response(JSON.stringify({ user: {}, disabled: true }), { status: 200 }));
    vi.stubGlobal("fetch", fetch);
    await api.setAgentDisabled("tok", "7", true);
    expect(fetch).toHaveBeenCalledWith("/api/agents/7", expect.objectContaining({ method: "PATCH", body: '{"disabled":true}' }));
  });

  it("signs the account out with a bodiless POST carrying the token, and takes the 204", async () => {
    const fetch = vi.fn(async () => new Response(null, { status: 204 }));
    vi.stubGlobal("fetch", fetch);
    await expect(api.logout("tok")).resolves.toBeNull();
    expect(fetch).toHaveBeenCalledExactlyOnceWith(
      "/api/logout",
      expect.objectContaining({ method: "POST", body: undefined, headers: expect.objectContaining({ authorization: "Bearer tok" }) }),
    );
  });

  it("reports a logout with a token the server no longer accepts as unauthorized", async () => {
    answer(401, JSON.stringify({ error: { code: "unauthorized", message: "sign in again" } }));
    await expect(api.logout("revoked")).rejects.toMatchObject({ status: 401, code: "unauthorized" });
  });

  it("gives up a logout when its signal aborts", async () => {
    vi.stubGlobal(
      "fetch",
      vi.fn(
        (_path: string, init: RequestInit) =>
          new Promise<Response>((_resolve, reject) => init.signal?.addEventListener("abort", () => reject(init.signal?.reason))),
      ),
    );
    const abort = new AbortController();
    const pending = api.logout("tok", abort.signal);
    abort.abort();
    await expect(pending).rejects.toMatchObject({ status: 0, code: "network" });
  });

  it("turns kefu's error body into its code", async () => {
    answer(403, JSON.stringify({ error: { code: "forbidden", message: "admins only" } }));
    await expect(api.nodes("tok")).rejects.toMatchObject({ status: 403, code: "forbidden", message: "admins only" });
  });

  it("calls a proxy's bare 502 a network failure, not a database outage", async () => {
    answer(502, null);
    await expect(api.nodes("tok")).rejects.toMatchObject({ code: "network" });
  });

  it("calls an unreachable server a network failure", async () => {
    vi.stubGlobal(
      "fetch",
      vi.fn(async () => {
        throw new TypeError("Failed to fetch");
      }),
    );
    const e = await api.listAgents("tok").catch((x: unknown) => x);
    expect(e).toBeInstanceOf(ApiError);
    expect(e).toMatchObject({ status: 0, code: "network" });
  });
});

describe("codeOfBareStatus", () => {
  it("maps statuses without kefu's error body", () => {
    expect(codeOfBareStatus(503)).toBe("network");
    expect(codeOfBareStatus(504)).toBe("network");
    expect(codeOfBareStatus(500)).toBe("internal");
    expect(codeOfBareStatus(401)).toBe("unauthorized");
    expect(codeOfBareStatus(403)).toBe("forbidden");
    expect(codeOfBareStatus(404)).toBe("not_found");
    expect(codeOfBareStatus(400)).toBe("invalid_payload");
  });
});
