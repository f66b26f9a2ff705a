// Test structure shared by every file: one describe block per transport, a server per block,
// server logs printed when a test fails, and the usual cast (agents and customers) in one call.
import assert from "node:assert/strict";
import { after, afterEach, before, describe, it } from "node:test";
import { createAgent, createVisitor } from "./api.mjs";
import { ack, assertOk, closeAllSockets, connect, waitFor } from "./client.mjs";
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

/**
 * A new visitor connected over `transport` and logged in (with `csId` if given). A login writes
 * nothing: the customer has no conversation, and is nobody's member, until its first message
 * (see firstMessage()); `csId` is only remembered for that message.
 */
export async function onlineCustomer(server, transport, { csId, visitor, name } = {}) {
  visitor ??= await createVisitor(server, name === undefined ? undefined : { name });
  const socket = await connect(server, visitor.token, { transport });
  const payload = { userId: visitor.user.id };
  if (csId !== undefined) payload.csId = csId;
  const login = assertOk(await ack(socket, "login", payload), "customer login");
  return { ...visitor, socket, login };
}

/**
 * `customer`'s first message (`payload`, by default `{ content: "hello" }`), which starts its
 * conversation with `agent` (an online agent it asked for, or the only one that can take it).
 * Asserts that the ack says so (`started: { csId: agent, queued: false }`) and waits until both
 * sides were told: `conversation_assigned` and the other's `user_online`/`update_member_list` on
 * each side, and the message itself at the agent. Then it empties the inboxes of both sockets,
 * so that what a test checks next is only what it caused. Resolves with the message's ack.
 */
export async function firstMessage(customer, agent, payload = { content: "hello" }) {
  const reply = await send(customer.socket, payload);
  assertId(reply.conversationId, "conversationId of a first message");
  assert.deepEqual(reply.started, { csId: agent.user.id, queued: false }, "the first message's ack must say it went to the agent");
  const conversation = (p) => p.conversationId === reply.conversationId;
  const online = (userId) => (p) => p.userId === userId && p.online === true;
  await Promise.all([
    waitFor(customer.socket, "conversation_assigned", { where: conversation }),
    waitFor(customer.socket, "user_online", { where: (id) => id === agent.user.id }),
    waitFor(customer.socket, "update_member_list", { where: online(agent.user.id) }),
    waitFor(agent.socket, "conversation_assigned", { where: conversation }),
    waitFor(agent.socket, "user_online", { where: (id) => id === customer.user.id }),
    waitFor(agent.socket, "update_member_list", { where: online(customer.user.id) }),
    waitFor(agent.socket, "new_private_message", { where: (m) => m.id === reply.id }),
  ]);
  customer.socket.inbox.clear();
  agent.socket.inbox.clear();
  return reply;
}

/**
 * A fresh customer in a conversation with `agent` (default: a fresh agent), both online over
 * `transport`: the customer logs in with `csId` = the agent and sends a first message
 * (`message`, default `{ content: "hello" }`), which starts the conversation, seq 1. Resolves
 * once both sides were told, with both inboxes empty (see firstMessage()), to
 * `{ agent, customer, conversationId, first }` where `first` is the first message's ack.
 */
export async function pair(server, transport, { agent, message } = {}) {
  agent ??= await onlineAgent(server, transport);
  const customer = await onlineCustomer(server, transport, { csId: agent.user.id });
  assert.equal(customer.login.conversationId, null, "a customer's login must not start a conversation");
  const first = await firstMessage(customer, agent, message);
  assert.equal(first.seq, 1, "a conversation's first message has seq 1");
  return { agent, customer, conversationId: first.conversationId, first };
}

/** Sends a text message and returns the successful ack. */
export async function send(socket, payload) {
  return assertOk(await ack(socket, "private_message", payload), `private_message ${JSON.stringify(payload).slice(0, 80)}`);
}
