// socket.io-client helpers: connect with a token over one transport, record every event, wait
// for events and acks with timeouts.
import assert from "node:assert/strict";
import { io } from "socket.io-client";

export const EVENT_TIMEOUT_MS = 5_000;
export const ACK_TIMEOUT_MS = 5_000;

/** Records every event a socket receives, from before it connects, so none is missed. */
export class Inbox {
  #entries = [];
  #waiters = new Set();

  constructor(socket) {
    socket.onAny((event, ...args) => {
      this.#entries.push({ event, payload: args.length <= 1 ? args[0] : args, consumed: false, at: Date.now() });
      for (const waiter of [...this.#waiters]) waiter();
    });
  }

  /** Payloads of every `event` received so far (consumed or not). */
  all(event) {
    return this.#entries.filter((e) => e.event === event).map((e) => e.payload);
  }

  /** Names of every event received so far, in order. */
  names() {
    return this.#entries.map((e) => e.event);
  }

  /** Forgets everything received so far. */
  clear() {
    this.#entries.length = 0;
  }

  /**
   * Resolves with the first received `event` payload (already received or yet to come) that
   * matches `where` and was not returned by an earlier next(); rejects after `timeout` ms.
   */
  next(event, { timeout = EVENT_TIMEOUT_MS, where = () => true } = {}) {
    return new Promise((resolve, reject) => {
      const check = () => {
        const entry = this.#entries.find((e) => !e.consumed && e.event === event && where(e.payload));
        if (!entry) return;
        entry.consumed = true;
        cleanup();
        resolve(entry.payload);
      };
      const timer = setTimeout(() => {
        cleanup();
        const seen = this.names();
        reject(new Error(`timed out after ${timeout} ms waiting for "${event}"; received so far: ${JSON.stringify(seen.slice(-20))}`));
      }, timeout);
      const cleanup = () => {
        clearTimeout(timer);
        this.#waiters.delete(check);
      };
      this.#waiters.add(check);
      check();
    });
  }

  /** Resolves with `count` payloads of `event` (see next()). */
  async take(event, count, options = {}) {
    const out = [];
    for (let i = 0; i < count; i++) out.push(await this.next(event, options));
    return out;
  }
}

/** Every socket opened through connect(), so a test can close them all at the end. */
export const openSockets = new Set();

function makeSocket(server, token, { transport = "websocket", reconnection = false, auth, ...rest } = {}) {
  const socket = io(server.url, {
    transports: [transport],
    reconnection,
    forceNew: true,
    timeout: 10_000,
    auth: auth ?? (token === undefined ? undefined : { token }),
    ...rest,
  });
  socket.inbox = new Inbox(socket);
  socket.disconnects = [];
  socket.on("disconnect", (reason) => socket.disconnects.push(reason));
  openSockets.add(socket);
  server.sockets?.add(socket);
  return socket;
}

/**
 * Resolves with a connected socket.io-client socket for `token` over `transport`
 * ("websocket" or "polling"). Every received event is recorded in socket.inbox.
 * Rejects with the connect_error if the server refuses it.
 */
export function connect(server, token, options = {}) {
  const socket = makeSocket(server, token, options);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.disconnect();
      reject(new Error(`socket did not connect within 10 s (${options.transport ?? "websocket"})`));
    }, 10_000);
    socket.once("connect", () => {
      clearTimeout(timer);
      socket.off("connect_error");
      resolve(socket);
    });
    socket.once("connect_error", (err) => {
      clearTimeout(timer);
      socket.disconnect();
      reject(err);
    });
  });
}

/** Resolves with the connect_error of a connection the server must refuse. */
export function connectError(server, token, options = {}) {
  const socket = makeSocket(server, token, options);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      socket.disconnect();
      reject(new Error("neither connect nor connect_error within 10 s"));
    }, 10_000);
    socket.once("connect", () => {
      clearTimeout(timer);
      socket.disconnect();
      reject(new Error("the server accepted a connection it must refuse"));
    });
    socket.once("connect_error", (err) => {
      clearTimeout(timer);
      socket.disconnect();
      resolve(err);
    });
  });
}

/** Waits for `event` on `socket` (see Inbox.next). */
export function waitFor(socket, event, options) {
  return socket.inbox.next(event, options);
}

/** Waits `ms` and asserts that `socket` received no `event` (or none matching `where`) meanwhile or before. */
export async function expectNo(socket, event, { ms = 300, where = () => true } = {}) {
  await sleep(ms);
  const got = socket.inbox.all(event).filter(where);
  assert.deepEqual(got, [], `unexpected "${event}": ${JSON.stringify(got).slice(0, 500)}`);
}

/** Resolves with the disconnect reason once `socket` disconnects, or rejects after `timeout`. */
export function waitForDisconnect(socket, timeout = EVENT_TIMEOUT_MS) {
  if (socket.disconnects.length > 0) return Promise.resolve(socket.disconnects[0]);
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`socket still connected after ${timeout} ms`)), timeout);
    socket.once("disconnect", (reason) => {
      clearTimeout(timer);
      resolve(reason);
    });
  });
}

/** Emits `event` with an ack callback and resolves with the ack (rejects after ACK_TIMEOUT_MS). */
export function ack(socket, event, ...args) {
  return ackWithin(ACK_TIMEOUT_MS, socket, event, ...args);
}

/** Like ack() with an explicit timeout in ms. */
export async function ackWithin(timeout, socket, event, ...args) {
  try {
    return await socket.timeout(timeout).emitWithAck(event, ...args);
  } catch (err) {
    throw new Error(`no ack for "${event}" within ${timeout} ms (${err.message})`);
  }
}

/** Asserts a successful ack and returns it. */
export function assertOk(reply, what = "ack") {
  assert.ok(reply && typeof reply === "object", `${what}: not an object: ${JSON.stringify(reply)}`);
  assert.equal(reply.ok, true, `${what}: expected ok:true, got ${JSON.stringify(reply)}`);
  return reply;
}

/** Asserts a failed ack `{ ok: false, error: { code, message } }`. */
export function assertAckError(reply, code, what = "ack") {
  assert.ok(reply && typeof reply === "object", `${what}: not an object: ${JSON.stringify(reply)}`);
  assert.equal(reply.ok, false, `${what}: expected ok:false/${code}, got ${JSON.stringify(reply).slice(0, 300)}`);
  assert.equal(reply.error?.code, code, `${what}: expected code ${code}, got ${JSON.stringify(reply.error)}`);
  assert.equal(typeof reply.error.message, "string");
  assert.ok(reply.error.message.length > 0, `${what}: empty error message`);
}

/** Disconnects every socket opened through connect(). */
export function closeAllSockets() {
  for (const socket of openSockets) socket.disconnect();
  openSockets.clear();
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

let rawAckId = 900_000;

/**
 * Sends a hand-written Socket.IO EVENT packet (`rawJson` is the JSON array text, e.g.
 * '["private_message",{"content":"hi"}]', which may be malformed on purpose) straight through
 * the Engine.IO connection, bypassing the client's encoder. Resolves with the ack's first
 * argument, or rejects if no ack arrives within `timeout` ms.
 */
export function rawEmitWithAck(socket, rawJson, timeout = ACK_TIMEOUT_MS) {
  const id = rawAckId++;
  const engine = socket.io.engine;
  return new Promise((resolve, reject) => {
    const onMessage = (data) => {
      if (typeof data !== "string" || !data.startsWith(`3${id}[`)) return;
      cleanup();
      resolve(JSON.parse(data.slice(`3${id}`.length))[0]);
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`no ack for a raw packet within ${timeout} ms (socket ${socket.connected ? "connected" : "disconnected"})`));
    }, timeout);
    const cleanup = () => {
      clearTimeout(timer);
      engine.off("message", onMessage);
    };
    engine.on("message", onMessage);
    engine.write(`2${id}${rawJson}`);
  });
}
