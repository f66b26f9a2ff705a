// Test structure shared by every file: one describe block per transport, a server per block,
// server logs printed when a test fails, and the usual cast (agents and customers) in one call.
import assert from "node:assert/strict";
import { after, afterEach, before, describe, it } from "node:test";
import { createAgent, createVisitor } from "./api.mjs";
import { ack, assertOk, closeAllSockets, connect } from "./client.mjs";
import { liveServers, startServer } from "./server.mjs";

export const TRANSPORTS = (process.env.KEFU_E2E_TRANSPORTS ?? "websocket,polling")
  .split(",")
  .map((t) => t.trim())
  .filter(Boolean);

/** Runs `body(transport)` inside one describe block per transport. */
export function forEachTransport(title, body) {
  for (const transport of TRANSPORTS) {
    describe(`${title} [${transport}]`, () => body(transport));
  }
}

/**
 * Starts one server for the enclosing describe block (before) and stops it (after, asserting
 * exit code 0). Sockets are closed after each test unless `keepSockets` (for blocks that
 * share sockets opened in a before hook). Returns a handle whose `server` is set once the
 * block runs.
 */
export function useServer({ keepSockets = false, ...options } = {}) {
  const handle = { server: undefined };
  before(async () => {
    handle.server = await startServer(options);
  });
  if (!keepSockets) afterEach(closeAllSockets);
  after(async () => {
    closeAllSockets();
    await handle.server?.close();
  });
  return handle;
}

/**
 * Starts a server for the current test only; it is stopped (exit code 0 asserted) when the
 * test ends.
 */
export async function serverForTest(t, options = {}) {
  const server = await startServer(options);
  t.after(async () => {
    closeAllSockets();
    await server.close();
  });
  return server;
}

/** `it` that prints the tail of every live server's log when the test fails. */
export function test(name, options, fn) {
  if (typeof options === "function") [options, fn] = [{}, options];
  return it(name, options, async (t) => {
    try {
      await fn(t);
    } catch (err) {
      for (const server of liveServers) {
        console.error(`\n--- ${server.name ?? "kefu"} log (port ${server.port}, data dir ${server.dataDir}) for failed test "${name}" ---\n${server.logTail()}\n---`);
      }
      throw err;
    }
  });
}

export const ID = /^[0-9]+$/;
export const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

export function assertId(value, what = "id") {
  assert.equal(typeof value, "string", `${what} must be a string, got ${JSON.stringify(value)}`);
  assert.match(value, ID, `${what} must be decimal digits`);
}

export function assertTimestamp(value, what = "timestamp") {
  assert.equal(typeof value, "string", `${what} must be a string, got ${JSON.stringify(value)}`);
  assert.match(value, TIMESTAMP, `${what} must be RFC 3339 UTC with milliseconds`);
  assert.ok(Math.abs(Date.parse(value) - Date.now()) < 10 * 60_000, `${what} ${value} is not close to now`);
}

/** An agent connected over `transport` and logged in. */
export async function onlineAgent(server, transport, agent) {
  agent ??= await createAgent(server);
  const socket = await connect(server, agent.token, { transport });
  const login = assertOk(await ack(socket, "login", { userId: agent.user.id }), "agent login");
  return { ...agent, socket, login };
}

/** A new visitor connected over `transport` and logged in (with `csId` if given). */
export async function onlineCustomer(server, transport, { csId, visitor, name } = {}) {
  visitor ??= await createVisitor(server, name === undefined ? undefined : { name });
  const socket = await connect(server, visitor.token, { transport });
  const payload = { userId: visitor.user.id };
  if (csId !== undefined) payload.csId = csId;
  const login = assertOk(await ack(socket, "login", payload), "customer login");
  return { ...visitor, socket, login };
}

/** A fresh agent and a fresh customer routed to it, both online over `transport`. */
export async function pair(server, transport) {
  const agent = await onlineAgent(server, transport);
  const customer = await onlineCustomer(server, transport, { csId: agent.user.id });
  assert.equal(customer.login.csId, agent.user.id, "the customer was not routed to the agent it asked for");
  return { agent, customer, conversationId: customer.login.conversationId };
}

/** Sends a text message and returns the successful ack. */
export async function send(socket, payload) {
  return assertOk(await ack(socket, "private_message", payload), `private_message ${JSON.stringify(payload).slice(0, 80)}`);
}
