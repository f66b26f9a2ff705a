// Raw Engine.IO / Socket.IO clients, below what socket.io-client lets a test send: a WebSocket
// client over node:net that writes any frame (RSV bits, invalid UTF-8, fragments, oversized or
// lying lengths), an Engine.IO session over either transport that sends any packet, and HTTP/1.1
// requests written by hand (huge headers, endless bodies). Node built-ins only: a WebSocket
// library would refuse to send most of what these tests need.
import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { readFileSync, writeFileSync } from "node:fs";
import http from "node:http";
import net from "node:net";

const WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
export const OPCODE = Object.freeze({ continuation: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa });
/** The Engine.IO v4 separator of packets in one long-polling payload. */
export const SEPARATOR = "\x1e";
export const EIO_PATH = "/socket.io/?EIO=4";

let nextAckId = 1;

/** Every raw WebSocket and session not yet closed, so a test can close them all at the end. */
const openRaw = new Set();

export function closeAllRaw() {
  for (const conn of [...openRaw]) (conn.close ?? conn.destroy).call(conn);
  openRaw.clear();
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Rejects with `message` (a string, or a function called then) after `ms`, unless `promise` settles first. */
export function within(ms, promise, message) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${typeof message === "function" ? message() : message} (no outcome within ${ms} ms)`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/**
 * One client frame, masked as a client must unless `mask: false`. `length` lies about the payload
 * length in the header (the payload given is sent as is; the rest, if any, must follow with
 * send()); `rsv` sets the three RSV bits (1..7).
 */
export function encodeFrame({ opcode, payload = Buffer.alloc(0), fin = true, rsv = 0, mask = true, length }) {
  const data = Buffer.from(payload);
  const declared = length ?? data.length;
  let header;
  if (declared < 126) {
    header = Buffer.alloc(2);
    header[1] = declared;
  } else if (declared < 65_536) {
    header = Buffer.alloc(4);
    header[1] = 126;
    header.writeUInt16BE(declared, 2);
  } else {
    header = Buffer.alloc(10);
    header[1] = 127;
    header.writeBigUInt64BE(BigInt(declared), 2);
  }
  header[0] = (fin ? 0x80 : 0) | ((rsv & 7) << 4) | (opcode & 0xf);
  if (!mask) return Buffer.concat([header, data]);
  header[1] |= 0x80;
  const key = randomBytes(4);
  for (let i = 0; i < data.length; i++) data[i] ^= key[i & 3];
  return Buffer.concat([header, key, data]);
}

/** Splits a byte stream of server frames (unmasked) into frames. */
class FrameReader {
  #buffer = Buffer.alloc(0);

  push(chunk) {
    this.#buffer = this.#buffer.length ? Buffer.concat([this.#buffer, chunk]) : chunk;
    const frames = [];
    for (;;) {
      const b = this.#buffer;
      if (b.length < 2) break;
      let length = b[1] & 0x7f;
      let offset = 2;
      if (length === 126) {
        if (b.length < 4) break;
        length = b.readUInt16BE(2);
        offset = 4;
      } else if (length === 127) {
        if (b.length < 10) break;
        length = Number(b.readBigUInt64BE(2));
        offset = 10;
      }
      const masked = (b[1] & 0x80) !== 0;
      const keyAt = offset;
      if (masked) offset += 4;
      if (b.length < offset + length) break;
      const payload = Buffer.from(b.subarray(offset, offset + length));
      if (masked) for (let i = 0; i < payload.length; i++) payload[i] ^= b[keyAt + (i & 3)];
      frames.push({ fin: (b[0] & 0x80) !== 0, rsv: (b[0] >> 4) & 7, opcode: b[0] & 0xf, payload });
      this.#buffer = b.subarray(offset + length);
    }
    return frames;
  }
}

/** Waits for messages pushed to it, in order, each returned once. */
class Queue {
  #items = [];
  #waiters = new Set();
  #ended = null;

  push(item) {
    this.#items.push({ item, taken: false });
    for (const waiter of [...this.#waiters]) waiter();
  }

  /** No more items: waiters for anything not yet queued fail with `reason`. */
  end(reason) {
    this.#ended ??= reason;
    for (const waiter of [...this.#waiters]) waiter();
  }

  all() {
    return this.#items.map((e) => e.item);
  }

  next({ where = () => true, timeout = 5_000, what = "a message" } = {}) {
    return new Promise((resolve, reject) => {
      const check = () => {
        const entry = this.#items.find((e) => !e.taken && where(e.item));
        if (entry) {
          entry.taken = true;
          cleanup();
          resolve(entry.item);
        } else if (this.#ended) {
          cleanup();
          reject(new Error(`waiting for ${what}: ${this.#ended}; received: ${this.describe()}`));
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`no ${what} within ${timeout} ms; received: ${this.describe()}`));
      }, timeout);
      const cleanup = () => {
        clearTimeout(timer);
        this.#waiters.delete(check);
      };
      this.#waiters.add(check);
      check();
    });
  }

  describe() {
    return JSON.stringify(this.#items.slice(-10).map(({ item }) => (typeof item === "string" ? item.slice(0, 120) : `<${item.length} bytes>`)));
  }
}

/**
 * A hand-written WebSocket client. `messages` holds what the server sent (text as strings,
 * binary as Buffers); `closed` resolves once the TCP connection is gone, with the close frame the
 * server sent: `{ code, reason, closeFrame, at }` where `code` is 1005 for a close frame without a
 * code and null when the connection ended without any close frame. `closing` resolves the same
 * way, but already at the close frame: a server may keep the connection open a while after it.
 */
export class RawWebSocket {
  #socket;
  #reader = new FrameReader();
  #fragments = null;
  #resolveClosing;

  constructor(socket, head) {
    openRaw.add(this);
    this.#socket = socket;
    this.messages = new Queue();
    this.closeFrame = null;
    this.bytesWritten = 0;
    this.writeError = null;
    this.closing = new Promise((resolve) => (this.#resolveClosing = resolve));
    this.closed = new Promise((resolve) => {
      socket.on("close", () => {
        const frame = this.closeFrame;
        this.messages.end(`the connection closed (close code ${frame ? frame.code : "none"})`);
        const outcome = { code: frame ? frame.code : null, reason: frame?.reason ?? "", closeFrame: Boolean(frame), at: Date.now() };
        this.#resolveClosing(outcome);
        resolve(outcome);
      });
    });
    this.isClosed = false;
    this.closed.then(() => (this.isClosed = true));
    socket.on("error", (err) => (this.writeError ??= err));
    socket.on("data", (chunk) => this.#receive(chunk));
    if (head.length) this.#receive(head);
  }

  /**
   * Opens a WebSocket to `path` on `server` (default: a new Engine.IO session). Rejects with
   * `err.status` set if the server answers the upgrade with anything but 101.
   */
  static connect(server, path = `${EIO_PATH}&transport=websocket`, { headers = {}, timeout = 10_000 } = {}) {
    return new Promise((resolve, reject) => {
      const key = randomBytes(16).toString("base64");
      const socket = net.connect(server.port, "127.0.0.1");
      socket.setNoDelay(true);
      let head = Buffer.alloc(0);
      const timer = setTimeout(() => fail(new Error(`no WebSocket handshake answer within ${timeout} ms`)), timeout);
      const fail = (err) => {
        clearTimeout(timer);
        socket.destroy();
        reject(err);
      };
      const onData = (chunk) => {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf("\r\n\r\n");
        if (end < 0) return;
        clearTimeout(timer);
        socket.off("data", onData);
        socket.off("error", fail);
        const lines = head.subarray(0, end).toString("latin1").split("\r\n");
        const status = Number(lines[0].split(" ")[1]);
        if (status !== 101) {
          const err = new Error(`WebSocket upgrade answered ${lines[0]}`);
          err.status = status;
          socket.destroy();
          return reject(err);
        }
        const accept = lines.find((l) => /^sec-websocket-accept:/i.test(l))?.split(":")[1].trim();
        const expected = createHash("sha1").update(key + WS_GUID).digest("base64");
        if (accept !== expected) return fail(new Error(`bad Sec-WebSocket-Accept ${accept}`));
        resolve(new RawWebSocket(socket, head.subarray(end + 4)));
      };
      socket.on("data", onData);
      socket.on("error", fail);
      const extra = Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join("");
      socket.write(
        `GET ${path} HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
          `Sec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`,
      );
    });
  }

  #receive(chunk) {
    for (const frame of this.#reader.push(chunk)) {
      if (frame.opcode === OPCODE.close) {
        if (!this.closeFrame) {
          const p = frame.payload;
          this.closeFrame = p.length >= 2 ? { code: p.readUInt16BE(0), reason: p.subarray(2).toString("utf8") } : { code: 1005, reason: "" };
          this.#resolveClosing({ ...this.closeFrame, closeFrame: true, at: Date.now() });
          // Answer like a well-behaved client, then let the server end the TCP connection.
          this.sendFrame({ opcode: OPCODE.close, payload: p.subarray(0, 2) });
        }
      } else if (frame.opcode === OPCODE.ping) {
        this.sendFrame({ opcode: OPCODE.pong, payload: frame.payload });
      } else if (frame.opcode === OPCODE.pong) {
        // unsolicited pongs carry nothing
      } else if (frame.opcode === OPCODE.continuation) {
        this.#fragments?.parts.push(frame.payload);
        if (frame.fin && this.#fragments) {
          const { opcode, parts } = this.#fragments;
          this.#fragments = null;
          this.#deliver(opcode, Buffer.concat(parts));
        }
      } else if (!frame.fin) {
        this.#fragments = { opcode: frame.opcode, parts: [frame.payload] };
      } else {
        this.#deliver(frame.opcode, frame.payload);
      }
    }
  }

  #deliver(opcode, payload) {
    this.messages.push(opcode === OPCODE.text ? payload.toString("utf8") : payload);
  }

  /** Writes raw bytes; resolves once they are handed to the kernel (false if the socket is gone). */
  send(bytes) {
    if (this.#socket.destroyed || this.#socket.writableEnded) return Promise.resolve(false);
    this.bytesWritten += bytes.length;
    return new Promise((resolve) => this.#socket.write(bytes, (err) => resolve(!err)));
  }

  sendFrame(options) {
    return this.send(encodeFrame(options));
  }

  sendText(text) {
    return this.sendFrame({ opcode: OPCODE.text, payload: Buffer.from(text, "utf8") });
  }

  sendBinary(bytes) {
    return this.sendFrame({ opcode: OPCODE.binary, payload: bytes });
  }

  destroy() {
    openRaw.delete(this);
    this.#socket.destroy();
  }
}

/** One HTTP request on a connection of its own: resolves to { status, text, headers }; rejects after `timeout`. */
export function httpRequest(server, method, path, { body, headers = {}, timeout = 10_000, agent = false, signal } = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port: server.port, method, path, headers, agent, timeout, signal }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("error", reject);
      res.on("end", () => resolve({ status: res.statusCode, text: Buffer.concat(chunks).toString("utf8"), headers: res.headers }));
    });
    req.on("timeout", () => req.destroy(new Error(`${method} ${path}: no answer within ${timeout} ms`)));
    req.on("error", reject);
    req.end(body);
  });
}

const TEXT_PLAIN = { "content-type": "text/plain;charset=UTF-8" };

/** The body of an Engine.IO polling POST: one packet or several joined by the separator. */
export const payload = (...packets) => packets.join(SEPARATOR);

/** Opens an Engine.IO long-polling session: resolves to { sid, open } (open is the parsed open packet). */
export async function pollingHandshake(server) {
  const res = await httpRequest(server, "GET", `${EIO_PATH}&transport=polling`);
  assert.equal(res.status, 200, `polling handshake: ${res.status} ${res.text}`);
  assert.equal(res.text[0], "0", `polling handshake: not an open packet: ${res.text}`);
  const open = JSON.parse(res.text.slice(1));
  return { sid: open.sid, open };
}

/** POSTs `body` (a string or Buffer) to the polling session `sid`. */
export function pollingPost(server, sid, body, { headers = TEXT_PLAIN, timeout } = {}) {
  return httpRequest(server, "POST", `${EIO_PATH}&transport=polling&sid=${encodeURIComponent(sid)}`, { body, headers, timeout });
}

/** One GET of the polling session `sid`. */
export function pollingGet(server, sid, { timeout, signal } = {}) {
  return httpRequest(server, "GET", `${EIO_PATH}&transport=polling&sid=${encodeURIComponent(sid)}`, { timeout, signal });
}

/** The answer engineioxide gives for a session it does not know (closed or never opened). */
export const SESSION_UNKNOWN = { status: 400, text: '{"code":"1","message":"Session ID unknown"}' };

/**
 * A raw Engine.IO session over either transport, the same interface for both:
 * - send(packet): one Engine.IO packet (text) in a WebSocket text frame or a polling POST;
 *   resolves to the POST's { status, text } (polling) or true (websocket);
 * - sendBinary(bytes): a binary packet (a binary frame, or `b<base64>` in a POST);
 * - next({ where, timeout }): the next Engine.IO packet from the server (strings; binary as Buffer);
 *   pings ("2") are answered with "3" unless `autoPong` is false, and never returned;
 * - ended: resolves once the server ended the session: { eioClose } tells whether the server sent
 *   the Engine.IO close packet "1" first; for websocket also { code } of its close frame, for
 *   polling { status, text } of the request that found the session gone.
 */
export class RawSession {
  static async open(server, transport, { autoPong = true } = {}) {
    const session = new RawSession(server, transport, autoPong);
    if (transport === "websocket") {
      session.ws = await RawWebSocket.connect(server);
      const open = await session.ws.messages.next({ where: (m) => typeof m === "string" && m.startsWith("0"), what: "the open packet" });
      session.open = JSON.parse(open.slice(1));
      session.sid = session.open.sid;
      session.#pumpWebSocket();
    } else {
      const { sid, open } = await pollingHandshake(server);
      session.sid = sid;
      session.open = open;
      session.#pollLoop();
    }
    return session;
  }

  /** An Engine.IO session whose Socket.IO CONNECT to "/" with `token` succeeded. */
  static async connect(server, transport, token, options) {
    const session = await RawSession.open(server, transport, options);
    await session.send(`40${JSON.stringify({ token })}`);
    const reply = await session.next({ where: (p) => typeof p === "string" && /^4[04]/.test(p), what: "the CONNECT answer" });
    assert.match(reply, /^40\{"sid":"[^"]+"/, `Socket.IO CONNECT refused: ${reply}`);
    return session;
  }

  constructor(server, transport, autoPong) {
    openRaw.add(this);
    this.server = server;
    this.transport = transport;
    this.autoPong = autoPong;
    this.packets = new Queue();
    this.eioClose = false;
    this.stopped = false;
    this.ended = new Promise((resolve) => (this.#resolveEnded = resolve));
    this.isEnded = false;
    this.ended.then(() => (this.isEnded = true));
  }

  #resolveEnded;
  #abort = new AbortController();

  #onPacket(packet) {
    if (packet === "2" && this.autoPong) {
      this.send("3").catch(() => {});
      return;
    }
    if (packet === "1") this.eioClose = true;
    this.packets.push(packet);
  }

  async #pumpWebSocket() {
    const ws = this.ws;
    (async () => {
      for (;;) {
        let message;
        try {
          message = await ws.messages.next({ timeout: 3_600_000 });
        } catch {
          return;
        }
        this.#onPacket(message);
      }
    })();
    const closed = await ws.closed;
    this.packets.end(`the server closed the WebSocket (code ${closed.code})`);
    this.#resolveEnded({ eioClose: this.eioClose, code: closed.code, closeFrame: closed.closeFrame, at: closed.at });
  }

  async #pollLoop() {
    while (!this.stopped) {
      let res;
      try {
        res = await pollingGet(this.server, this.sid, { timeout: 120_000, signal: this.#abort.signal });
      } catch (err) {
        if (this.stopped) return;
        this.packets.end(`polling GET failed: ${err.message}`);
        this.#resolveEnded({ eioClose: this.eioClose, error: err.message, at: Date.now() });
        return;
      }
      if (res.status !== 200) {
        this.packets.end(`polling GET answered ${res.status} ${res.text}`);
        this.#resolveEnded({ eioClose: this.eioClose, status: res.status, text: res.text, at: Date.now() });
        return;
      }
      // An empty 200 is what a GET pending when the session closes gets; the next one tells.
      for (const packet of res.text ? res.text.split(SEPARATOR) : []) {
        this.#onPacket(packet[0] === "b" ? Buffer.from(packet.slice(1), "base64") : packet);
      }
    }
  }

  async send(packet) {
    if (this.transport === "websocket") return this.ws.sendText(packet);
    return pollingPost(this.server, this.sid, packet);
  }

  async sendBinary(bytes) {
    if (this.transport === "websocket") return this.ws.sendBinary(bytes);
    return pollingPost(this.server, this.sid, `b${Buffer.from(bytes).toString("base64")}`);
  }

  next(options = {}) {
    return this.packets.next({ what: "a packet", ...options });
  }

  /**
   * Sends the Socket.IO EVENT `[event, data]` with a fresh ack id and resolves with the ack's
   * first argument; a polling POST must be answered 200 "ok".
   */
  async emitWithAck(event, data, { timeout = 5_000 } = {}) {
    const id = nextAckId++;
    const posted = await this.send(`42${id}${JSON.stringify([event, data])}`);
    if (this.transport === "polling") assert.deepEqual([posted.status, posted.text], [200, "ok"], `POST of "${event}"`);
    return this.ack(id, { timeout, what: `the ack of "${event}"` });
  }

  /** Resolves with the first argument of the ack with id `id` (an EVENT sent by hand). */
  async ack(id, { timeout = 5_000, what = `the ack ${id}` } = {}) {
    const reply = await this.next({ where: (p) => typeof p === "string" && p.startsWith(`43${id}[`), timeout, what });
    return JSON.parse(reply.slice(`43${id}`.length))[0];
  }

  /** Packets received so far (pings answered automatically excluded). */
  received() {
    return this.packets.all();
  }

  /** Resolves to `ended` or rejects after `timeout` ms. */
  endedWithin(timeout, what = "the server ending the session") {
    return within(timeout, this.ended, `${this.transport}: ${what}`);
  }

  /**
   * Like endedWithin(), but over WebSocket resolves already at the server's close frame (to the
   * WebSocket's `closing`): the end of a session that a server announces and then lingers over.
   */
  closingWithin(timeout, what = "the server ending the session") {
    return within(timeout, this.ws ? this.ws.closing : this.ended, `${this.transport}: ${what}`);
  }

  close() {
    this.stopped = true;
    openRaw.delete(this);
    this.#abort.abort();
    if (this.ws) this.ws.destroy();
  }
}

/**
 * Writes a raw HTTP/1.1 request (`head`: the whole request line and headers, blank line included)
 * and resolves with { status, statusLine, text, closed }: the answer's status code, or null if the
 * connection closed without one.
 */
export function rawHttp(server, head, { body, timeout = 15_000 } = {}) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(server.port, "127.0.0.1");
    let received = Buffer.alloc(0);
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer and no close within ${timeout} ms`));
    }, timeout);
    const finish = (closed) => {
      clearTimeout(timer);
      const text = received.toString("latin1");
      const statusLine = text.split("\r\n")[0];
      const m = statusLine.match(/^HTTP\/1\.[01] (\d{3})/);
      socket.destroy();
      resolve({ status: m ? Number(m[1]) : null, statusLine, text, closed });
    };
    socket.on("data", (chunk) => {
      received = Buffer.concat([received, chunk]);
      const end = received.indexOf("\r\n\r\n");
      if (end < 0) return;
      const headers = received.subarray(0, end).toString("latin1");
      const length = Number(headers.match(/\r\ncontent-length:\s*(\d+)/i)?.[1] ?? 0);
      if (received.length >= end + 4 + length) finish(false);
    });
    socket.on("error", () => {});
    socket.on("close", () => finish(true));
    socket.write(head);
    if (body) socket.write(body);
  });
}

/**
 * POSTs a `size`-byte body to `path` over a raw connection, writing as fast as the server takes
 * it, and resolves once the server closed the connection: { statusLine } of its answer ("" if
 * none arrived) and how many body bytes the kernel accepted before the close.
 */
export function rawHttpUpload(server, path, size, { timeout = 30_000 } = {}) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(server.port, "127.0.0.1");
    const chunk = Buffer.alloc(256 * 1024, 0x33);
    let received = "";
    let written = 0;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`the server neither answered nor closed within ${timeout} ms (${written} bytes written)`));
    }, timeout);
    socket.on("data", (data) => {
      received += data.toString("latin1");
      // An answer before the whole body: stop sending, the server will not read it.
      if (received.includes("\r\n\r\n")) socket.end();
    });
    socket.on("error", () => {});
    socket.on("close", () => {
      clearTimeout(timer);
      resolve({ statusLine: received.split("\r\n")[0], bodyBytesWritten: written });
    });
    socket.write(`POST ${path} HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: ${size}\r\n\r\n`);
    const pump = () => {
      while (written < size && !socket.destroyed && !socket.writableEnded) {
        const part = chunk.subarray(0, Math.min(chunk.length, size - written));
        written += part.length;
        if (!socket.write(part)) return socket.once("drain", pump);
      }
    };
    pump();
  });
}

/** A memory figure (`VmRSS`, `VmHWM`) of process `pid` in bytes, from /proc/<pid>/status. */
function statusBytes(pid, field) {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kb = Number(status.match(new RegExp(`^${field}:\\s+(\\d+) kB`, "m"))?.[1]);
  assert.ok(Number.isFinite(kb), `${field} not found in /proc/${pid}/status`);
  return kb * 1024;
}

/** Resident memory of process `pid` in bytes (Linux /proc). */
export function residentBytes(pid) {
  return statusBytes(pid, "VmRSS");
}

/**
 * The most resident memory process `pid` has had since it started or since the last
 * resetPeakResident(pid), in bytes: catches a buffer allocated and freed between two readings.
 */
export function peakResidentBytes(pid) {
  return statusBytes(pid, "VmHWM");
}

/** Sets the peak of peakResidentBytes(pid) to the current resident memory (Linux 4.0+). */
export function resetPeakResident(pid) {
  writeFileSync(`/proc/${pid}/clear_refs`, "5");
}
