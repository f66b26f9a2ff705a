// REST helpers: visitors, staff login, agent creation.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";
import http from "node:http";

/**
 * One HTTP request. `body` is sent as JSON; `rawBody` is sent as is (with a JSON content type).
 * Resolves to { status, body, text, headers } where body is the parsed JSON or undefined.
 * A `server` with an `agent` (an http.Agent, e.g. bound to a local address: see cluster.mjs)
 * sends the request through it.
 */
export async function request(server, method, path, { token, body, rawBody, headers = {}, timeout = 10_000 } = {}) {
  const init = { method, headers: { ...headers } };
  if (token) init.headers.authorization = `Bearer ${token}`;
  if (body !== undefined || rawBody !== undefined) {
    init.headers["content-type"] ??= "application/json";
    init.body = rawBody ?? JSON.stringify(body);
  }
  const response = server.agent
    ? await requestThrough(server.agent, `${server.url}${path}`, init, timeout)
    : await fetch(`${server.url}${path}`, { ...init, signal: AbortSignal.timeout(timeout) });
  const text = await response.text();
  let parsed;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  return { status: response.status, body: parsed, text, headers: response.headers };
}

/** The part of fetch()'s Response that request() uses, over node:http with `agent`. */
function requestThrough(agent, url, { method, headers, body }, timeout) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method, headers, agent, timeout }, (res) => {
      const chunks = [];
      res.on("data", (chunk) => chunks.push(chunk));
      res.on("error", reject);
      res.on("end", () => {
        const text = Buffer.concat(chunks).toString("utf8");
        resolve({ status: res.statusCode, headers: new Headers(res.headers), text: async () => text });
      });
    });
    req.on("timeout", () => req.destroy(new Error(`${method} ${url}: no answer within ${timeout} ms`)));
    req.on("error", reject);
    req.end(body);
  });
}

/** Asserts the documented error envelope `{ error: { code, message } }` with the given status. */
export function assertHttpError(response, status, code) {
  assert.equal(response.status, status, `expected HTTP ${status}, got ${response.status}: ${response.text}`);
  assert.ok(response.body && typeof response.body.error === "object", `no error object in ${response.text}`);
  assert.equal(response.body.error.code, code, `expected code ${code}, got ${response.text}`);
  assert.equal(typeof response.body.error.message, "string");
  assert.ok(response.body.error.message.length > 0, "error message is empty");
}

export const uniqueName = (prefix = "agent") => `${prefix}-${randomBytes(4).toString("hex")}`;

/** POST /api/visitors → { token, user }. */
export async function createVisitor(server, body) {
  const res = await request(server, "POST", "/api/visitors", body === undefined ? {} : { body });
  assert.equal(res.status, 201, `POST /api/visitors: ${res.status} ${res.text}`);
  return res.body;
}

/** POST /api/login → { token, user }. */
export async function login(server, username, password) {
  const res = await request(server, "POST", "/api/login", { body: { username, password } });
  assert.equal(res.status, 200, `POST /api/login as ${username}: ${res.status} ${res.text}`);
  return res.body;
}

const adminTokens = new WeakMap();

/** The admin's token (logged in once per server). */
export async function adminToken(server) {
  if (!adminTokens.has(server)) {
    adminTokens.set(server, (await login(server, "admin", server.adminPassword)).token);
  }
  return adminTokens.get(server);
}

/**
 * Creates an agent through POST /api/agents and logs it in.
 * Resolves to { token, user, username, password }.
 */
export async function createAgent(server, { username = uniqueName(), password = `secret-${randomBytes(6).toString("hex")}`, displayName } = {}) {
  const body = { username, password };
  if (displayName !== undefined) body.displayName = displayName;
  const res = await request(server, "POST", "/api/agents", { token: await adminToken(server), body });
  assert.equal(res.status, 201, `POST /api/agents: ${res.status} ${res.text}`);
  const session = await login(server, username, password);
  return { ...session, username, password };
}
