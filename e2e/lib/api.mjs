// REST helpers: visitors, staff login, agent creation.
import assert from "node:assert/strict";
import { randomBytes } from "node:crypto";

/**
 * One HTTP request. `body` is sent as JSON; `rawBody` is sent as is (with a JSON content type).
 * Resolves to { status, body, text, headers } where body is the parsed JSON or undefined.
 */
export async function request(server, method, path, { token, body, rawBody, headers = {}, timeout = 10_000 } = {}) {
  const init = { method, headers: { ...headers } };
  if (token) init.headers.authorization = `Bearer ${token}`;
  if (body !== undefined || rawBody !== undefined) {
    init.headers["content-type"] ??= "application/json";
    init.body = rawBody ?? JSON.stringify(body);
  }
  const response = await fetch(`${server.url}${path}`, { ...init, signal: AbortSignal.timeout(timeout) });
  const text = await response.text();
  let parsed;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  return { status: response.status, body: parsed, text, headers: response.headers };
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
