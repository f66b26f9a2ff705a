// Hostile and malformed input at the transport level: raw Engine.IO and Socket.IO packets,
// WebSocket frames and HTTP requests that socket.io-client never sends (lib/raw.mjs writes them by
// hand). Each case asserts the outcome (the HTTP status, the ack or its absence, the close of the
// connection and the end of the session, what was or was not delivered) and then that the server
// still serves everyone else: a fresh agent and visitor exchange a message both ways over each
// transport.
//
// 1. Engine.IO: an unknown packet type, an empty packet (also right after the open packet, 100
//    times each: every session ends, with close code 1002), a polling POST of garbage (400).
// 2. Socket.IO: invalid JSON after `42`, a non-string event name, `error` and `disconnect` sent by
//    a client (unknown events: answered `unknown_event`, nothing else), a packet nested 100,000
//    levels deep, packets for an unknown namespace.
// 3. A binary attachment where none is expected: `invalid_payload`.
// 4. An attachment count far above the parser's cap (10): closed at the header, nothing buffered.
// 5. Ack ids that do not fit in 64 bits (2^64, 40 digits): socketioxide reads them as no ack id,
//    so the event runs without an ack: `history` gets none and the session goes on; a
//    `private_message` with a `clientMsgId` is stored once, and its retry with a normal ack id is
//    acked `duplicate: true` with the same id. 2^63-1 is acked as usual.
// 6. A WebSocket frame or message over the maximum payload, invalid UTF-8 (in one frame and in a
//    continuation), RSV bits: closed within 5 s with 1009, 1007 and 1002, the session gone, the
//    data never delivered; exactly the maximum payload (65,536 bytes) is delivered. A polling POST
//    over it: 413.
// 7. A refused Socket.IO packet, 200 times: every session ends within 5 s, with "1" and a close frame.
// 8. 20,000 one-byte continuation fragments of one message: delivered.
// 9. A 64 MiB polling POST: 413 or the connection closed, within 5 s, after a few MiB at most,
//    with the server's peak memory up by well under 64 MiB; 200,000 Engine.IO packets in one
//    polling POST: 413, memory bounded.
// 10. A 64 KiB request header and 5,000 request headers: 431.
// 11. Slowloris polling POSTs (a byte a second): 408 (or the connection closed) 10 to 30 s after
//     their headers (a body must bring 40 KiB every 10 s), everyone else served meanwhile; 2,000
//     half-open Engine.IO sessions (never joining "/"; socketioxide's connect timeout is 45 s):
//     closed by the server.
//
// A packet kefu cannot parse ends its session: the Engine.IO close packet "1" when the Socket.IO
// layer refuses it, then a WebSocket close frame without a code (1005) or, over long-polling, the
// session gone. A WebSocket the server cannot read closes with the code of RFC 6455 that says why
// (1009, 1007, 1002). Upstream engineioxide 0.17 sends no code and sometimes no close frame at all;
// kefu builds with a patched copy (vendor/engineioxide/PATCHES.md) that these tests hold to it.
import assert from "node:assert/strict";
import { after, afterEach, beforeEach, describe } from "node:test";
import net from "node:net";
import { createVisitor } from "../lib/api.mjs";
import { ack, assertAckError, assertOk, closeAllSockets, expectNo, waitFor } from "../lib/client.mjs";
import { forEachTransport, onlineAgent, pair, send, serverForTest, test, TRANSPORTS } from "../lib/harness.mjs";
import { startServer } from "../lib/server.mjs";
import {
  closeAllRaw,
  EIO_PATH,
  encodeFrame,
  OPCODE,
  payload,
  peakResidentBytes,
  pollingGet,
  pollingHandshake,
  pollingPost,
  rawHttp,
  rawHttpUpload,
  RawSession,
  resetPeakResident,
  residentBytes,
  SEPARATOR,
  SESSION_UNKNOWN,
  sleep,
  within,
} from "../lib/raw.mjs";

const MiB = 1024 * 1024;
/** crates/kefu/src/socket/mod.rs: max(64 KiB, 2 * KEFU_MAX_MESSAGE_BYTES + 16 KiB). */
const maxPayload = (maxMessageBytes = 8192) => Math.max(64 * 1024, 2 * maxMessageBytes + 16 * 1024);
/** socketioxide's default connect_timeout: an Engine.IO session that never joins a namespace is closed after it. */
const CONNECT_TIMEOUT_MS = 45_000;

afterEach(closeAllRaw);

/**
 * Like harness.mjs's useServer, but the server starts before the block's first test that runs:
 * a block whose tests --test-name-pattern filters out starts none (a server stopped the moment it
 * printed its address can die of the SIGTERM before it handles it).
 */
function useServerOnDemand(options) {
  const handle = { server: undefined };
  beforeEach(async () => {
    handle.server ??= await startServer(options);
  });
  afterEach(closeAllSockets);
  after(async () => {
    closeAllSockets();
    await handle.server?.close();
  });
  return handle;
}

/** A fresh agent and visitor still exchange a message both ways, over each transport. */
async function assertStillServes(server) {
  for (const transport of TRANSPORTS) {
    const { agent, customer } = await pair(server, transport);
    const asked = await send(customer.socket, { content: `still there over ${transport}?` });
    const got = await waitFor(agent.socket, "new_private_message", { where: (m) => m.id === asked.id });
    assert.equal(got.content, `still there over ${transport}?`);
    const answered = await send(agent.socket, { receiverId: customer.user.id, content: "yes" });
    assert.equal((await waitFor(customer.socket, "new_private_message", { where: (m) => m.id === answered.id })).content, "yes");
    agent.socket.disconnect();
    customer.socket.disconnect();
  }
}

/** The Engine.IO session `sid` no longer exists on the server. */
async function assertSessionGone(server, sid, what) {
  const res = await pollingGet(server, sid, { timeout: 5_000 });
  assert.deepEqual({ status: res.status, text: res.text }, SESSION_UNKNOWN, `${what}: the session still exists`);
}

/**
 * The server ended `session` the way it ends one whose packet it cannot parse, promptly: over
 * WebSocket the Engine.IO close packet "1", then the connection closed, with a close frame without
 * a code (1005) if any (engineioxide does not promise one); over long-polling the session gone
 * (its "1" reaches only a GET that happened to be pending).
 */
async function assertClosedAsMalformed(session, what) {
  const ended = await session.endedWithin(5_000, `${what}: the server did not end the session`);
  if (session.transport === "websocket") {
    assert.equal(ended.eioClose, true, `${what}: the session ended without the Engine.IO close packet: ${JSON.stringify(ended)}`);
    if (ended.closeFrame) assert.equal(ended.code, 1005, `${what}: close code`);
  } else {
    assert.deepEqual({ status: ended.status, text: ended.text }, SESSION_UNKNOWN, `${what}: how the polling session ended`);
  }
  await assertSessionGone(session.server, session.sid, what);
}

/**
 * How the server ended `session`, without throwing, for tests that repeat a refusal and count the
 * outcomes: "ended and gone" when within 5 s it sent a close frame or, without one, closed the
 * connection, and no longer knows the session; otherwise what it did instead.
 */
async function endOf(session) {
  const ended = await session.closingWithin(5_000).catch(() => null);
  if (!ended) return "still open after 5 s";
  const res = await pollingGet(session.server, session.sid, { timeout: 5_000 }).catch((err) => ({ status: err.message, text: "" }));
  if (res.status !== SESSION_UNKNOWN.status || res.text !== SESSION_UNKNOWN.text) return `ended, but the session answers ${res.status} ${res.text}`;
  return "ended and gone";
}

/** How the server closed `session`'s WebSocket so far, for diagnostics: its close frame, or none. */
function closing(session) {
  const { closeFrame, isClosed } = session.ws;
  if (!closeFrame && !isClosed) return "still open";
  return `${session.eioClose ? '"1", ' : ""}${closeFrame ? `close frame ${closeFrame.code}` : "no close frame"}`;
}

/** Counts `key` in `counts`. */
const tally = (counts, key) => (counts[key] = (counts[key] ?? 0) + 1);

/** The session is still open and answers a `history` with an ack. */
async function assertAlive(session, what) {
  assert.equal(session.isEnded, false, `${what}: the server ended the session`);
  assertOk(await session.emitWithAck("history", {}), `${what}: history afterwards`);
}

/**
 * A Socket.IO session of a new visitor over `transport`. With `agent`: logged in asking for it and
 * in a conversation with it, started by a first message (`first`, its ack). What the login and the
 * start send is taken from the session, and the agent's inbox emptied, so that later checks see
 * only what they caused.
 */
async function rawCustomer(server, transport, agent) {
  const visitor = await createVisitor(server);
  const session = await RawSession.connect(server, transport, visitor.token);
  if (!agent) return { ...visitor, session };
  const event = (name) => ({ where: (p) => typeof p === "string" && p.startsWith(`42["${name}"`), what: name });
  assertOk(await session.emitWithAck("login", { userId: visitor.user.id, csId: agent.user.id }), "raw login");
  await session.next(event("Online_user"));
  const first = assertOk(await session.emitWithAck("private_message", { content: "hello" }), "raw first message");
  assert.deepEqual(first.started, { csId: agent.user.id, queued: false }, "the raw customer's first message went to its agent");
  for (const name of ["conversation_assigned", "user_online", "update_member_list"]) await session.next(event(name));
  await waitFor(agent.socket, "conversation_assigned", { where: (p) => p.customerId === visitor.user.id });
  await waitFor(agent.socket, "update_member_list", { where: (p) => p.userId === visitor.user.id && p.online });
  await waitFor(agent.socket, "new_private_message", { where: (m) => m.id === first.id });
  agent.socket.inbox.clear();
  return { ...visitor, session, first };
}

/** The server's resident memory in MiB. */
const rssMiB = (server) => residentBytes(server.child.pid) / MiB;

/** A `private_message` EVENT of exactly `size` bytes (JSON whitespace pads it), acked with `id`. */
function paddedMessage(id, content, size) {
  const head = `42${id}["private_message",{"content":${JSON.stringify(content)}`;
  const tail = "}]";
  return head + " ".repeat(size - head.length - tail.length) + tail;
}

/** Masked frames of `text`, one byte per frame: a text frame then continuations. */
function oneByteFragments(text) {
  const bytes = Buffer.from(text, "utf8");
  const frames = [];
  for (let i = 0; i < bytes.length; i++) {
    frames.push(encodeFrame({ opcode: i === 0 ? OPCODE.text : OPCODE.continuation, fin: i === bytes.length - 1, payload: bytes.subarray(i, i + 1) }));
  }
  return Buffer.concat(frames);
}

/** A Socket.IO EVENT packet of exactly `size` bytes (JSON whitespace pads it), acked with `id`. */
function paddedHistory(id, size) {
  const head = `42${id}["history",{"limit":1`;
  const tail = "}]";
  return head + " ".repeat(size - head.length - tail.length) + tail;
}

describe("Engine.IO packets", () => {
  const ctx = useServerOnDemand({ env: { KEFU_MESSAGE_RATE_LIMIT: "0" } });

  /**
   * How the server ends a WebSocket Engine.IO session that joined "/" (so its writer is running)
   * after `text` in one text frame (see endOf), and its close frame: 1002 (protocol error), from
   * kefu's copy of engineioxide (vendor/engineioxide; upstream closes with no code).
   */
  async function refusal(text) {
    const session = await RawSession.connect(ctx.server, "websocket", (await createVisitor(ctx.server)).token);
    await session.ws.sendText(text);
    return `${await endOf(session)}, ${closing(session)}`;
  }

  test("an unknown packet type in a WebSocket frame closes the connection", async () => {
    assert.deepEqual(
      { '"9"': await refusal("9"), '"9hello"': await refusal("9hello") },
      { '"9"': "ended and gone, close frame 1002", '"9hello"': "ended and gone, close frame 1002" },
    );
    await assertStillServes(ctx.server);
  });

  test("an empty WebSocket text frame closes the connection", async () => {
    assert.equal(await refusal(""), "ended and gone, close frame 1002", "empty text frame");
    await assertStillServes(ctx.server);
  });

  test("a bad packet right after the open packet ends the session, every time", async (t) => {
    // 100 tries of each: a race inside the server must fail this test every time, not now and then.
    // Upstream engineioxide sometimes closed without a close frame (when the session ended before
    // its WebSocket writer started); kefu's copy (vendor/engineioxide) always sends one.
    const outcomes = {};
    const closings = {};
    for (const text of ["9", ""]) {
      for (let i = 0; i < 100; i++) {
        const session = await RawSession.open(ctx.server, "websocket");
        await session.ws.sendText(text);
        tally(outcomes, `${JSON.stringify(text)}: ${await endOf(session)}`);
        tally(closings, closing(session));
      }
    }
    t.diagnostic(`how the connections ended: ${JSON.stringify(closings)}`);
    assert.deepEqual(outcomes, { '"9": ended and gone': 100, '"": ended and gone': 100 }, "how 200 sessions ended");
    assert.deepEqual(closings, { "close frame 1002": 200 }, "their close frames");
    await assertStillServes(ctx.server);
  });

  test("a polling POST of garbage is 400 and ends the session", async () => {
    for (const body of ["garbage", "9", payload("3", "", "3"), Buffer.from([0xff, 0xfe, 0x00, 0x34])]) {
      const { sid } = await pollingHandshake(ctx.server);
      const res = await pollingPost(ctx.server, sid, body);
      const what = `POST ${JSON.stringify(String(body))}`;
      assert.equal(res.status, 400, `${what}: ${res.status} ${res.text}`);
      await assertSessionGone(ctx.server, sid, what);
    }
    await assertStillServes(ctx.server);
  });
});

forEachTransport("Socket.IO packets", (transport) => {
  // A raised message limit (max payload 272 KiB) so that a 100,000-level packet (200 KB) reaches
  // the Socket.IO parser instead of the transport's size limit.
  const ctx = useServerOnDemand({ env: { KEFU_MESSAGE_RATE_LIMIT: "0", KEFU_MAX_MESSAGE_BYTES: "131072" } });

  async function assertRefused(packet, what = packet.slice(0, 60)) {
    const { session } = await rawCustomer(ctx.server, transport);
    await session.send(packet);
    await assertClosedAsMalformed(session, what);
  }

  test("invalid JSON after 42 closes the connection", async () => {
    await assertRefused('42{"a":');
    await assertRefused("42nope");
    await assertRefused('421["history",{');
    await assertRefused('42["history",{"limit":1}');
    await assertStillServes(ctx.server);
  });

  test("an event name that is not a string closes the connection", async () => {
    await assertRefused('42[{"toString":"x"}]');
    await assertRefused('421[{"toString":"x"}]');
    await assertRefused("42[42]");
    await assertRefused("42[]");
    await assertStillServes(ctx.server);
  });

  test('"error" and "disconnect" sent by a client are unknown events: answered unknown_event, no disconnect, no presence change', async () => {
    const agent = await onlineAgent(ctx.server, transport);
    const customer = await rawCustomer(ctx.server, transport, agent);
    const before = customer.session.received().length;
    const sent = [['error', {}], ['disconnect', {}], ['error', { code: "internal" }], ['disconnect', "io server disconnect"]];
    for (const [event, data] of sent) {
      const packet = `42${JSON.stringify([event, data])}`;
      const posted = await customer.session.send(packet);
      if (transport === "polling") assert.deepEqual([posted.status, posted.text], [200, "ok"], packet);
    }
    await expectNo(agent.socket, "user_offline", { ms: 1_000 });
    // Each is an event kefu does not have, sent without an ack id: the `error` event says so
    // (docs/protocol.md, unknown_event), and nothing else comes back.
    const answers = customer.session.received().slice(before).map((p) => {
      assert.ok(typeof p === "string" && p.startsWith('42["error",'), `the server answered with ${JSON.stringify(p).slice(0, 200)}`);
      const [, body] = JSON.parse(p.slice(2));
      return [body.event, body.code];
    });
    assert.deepEqual(answers.sort(), sent.map(([event]) => [event, "unknown_event"]).sort(), "the answers to client-sent error/disconnect events");
    await assertAlive(customer.session, "after error/disconnect events");
    const message = assertOk(await customer.session.emitWithAck("private_message", { content: "still me" }));
    assert.equal((await waitFor(agent.socket, "new_private_message", { where: (m) => m.id === message.id })).content, "still me");
    await assertStillServes(ctx.server);
  });

  test("a packet nested 100,000 levels deep is refused without harm", async () => {
    const depth = 100_000;
    const nested = "[".repeat(depth) + "]".repeat(depth);
    // No event name at all: malformed.
    await assertRefused(`42${nested}`, "42 + 100,000 nested arrays");
    const { session } = await rawCustomer(ctx.server, transport);
    // A field no handler reads is skipped, however deep; one a handler reads is the wrong type.
    const posted = await session.send(`4277["history",{"x":${nested}}]`);
    if (transport === "polling") assert.deepEqual([posted.status, posted.text], [200, "ok"]);
    assertOk(await session.ack(77), "history with an unknown 100,000-level field");
    await session.send(`4278["private_message",${nested}]`);
    assertAckError(await session.ack(78), "invalid_payload", "private_message with a 100,000-level payload");
    await session.send(`4279["private_message",{"content":${nested}}]`);
    assertAckError(await session.ack(79), "invalid_payload", "private_message with 100,000-level content");
    await assertAlive(session, "after the deep payloads");
    await assertStillServes(ctx.server);
  });

  test("a CONNECT to an unknown namespace is refused with CONNECT_ERROR, its events are ignored", async () => {
    const visitor = await createVisitor(ctx.server);
    const session = await RawSession.connect(ctx.server, transport, visitor.token);
    await session.send(`40/nope,${JSON.stringify({ token: visitor.token })}`);
    const refused = await session.next({ where: (p) => typeof p === "string" && p.startsWith("44"), what: "CONNECT_ERROR" });
    assert.equal(refused, '44/nope,{"message":"Invalid namespace"}');
    const before = session.received().length;
    await session.send('42/nope,5["history",{}]');
    await session.send('42/nope,["private_message",{"content":"to nowhere"}]');
    await session.send("41/nope,");
    await sleep(500);
    assert.deepEqual(session.received().slice(before), [], "the server answered a packet for an unknown namespace");
    await assertAlive(session, "after packets for an unknown namespace");
    await assertStillServes(ctx.server);
  });

  test("a binary attachment where none is expected is invalid_payload", async () => {
    const agent = await onlineAgent(ctx.server, transport);
    const customer = await rawCustomer(ctx.server, transport, agent);
    const { session } = customer;
    await session.send('451-7["private_message",{"_placeholder":true,"num":0}]');
    await session.sendBinary(Buffer.from([1, 2, 3]));
    assertAckError(await session.ack(7), "invalid_payload", "binary payload");
    await session.send('451-8["private_message",{"content":{"_placeholder":true,"num":0}}]');
    await session.sendBinary(Buffer.from("hello"));
    assertAckError(await session.ack(8), "invalid_payload", "binary content");
    // Without an ack id: the `error` event.
    await session.send('451-["private_message",{"_placeholder":true,"num":0}]');
    await session.sendBinary(Buffer.from([1, 2, 3]));
    const error = await session.next({ where: (p) => typeof p === "string" && p.startsWith('42["error"'), what: "the error event" });
    const [, body] = JSON.parse(error.slice(2));
    assert.equal(body.event, "private_message");
    assert.equal(body.code, "invalid_payload");
    await expectNo(agent.socket, "new_private_message", { ms: 300 });
    const history = assertOk(await session.emitWithAck("history", {}));
    assert.deepEqual(history.messages.map((m) => m.id), [customer.first.id], "a binary message was stored");
    await assertStillServes(ctx.server);
  });

  test("an attachment count far above the cap closes the connection at the header", async () => {
    // The header alone is enough: the server closes without waiting for any attachment.
    const alone = (await rawCustomer(ctx.server, transport)).session;
    const header = '45999999-["private_message",{}]';
    const posted = await alone.send(header);
    if (transport === "polling") assert.deepEqual([posted.status, posted.text], [200, "ok"], "the header's POST");
    await assertClosedAsMalformed(alone, "45999999- alone");

    // Followed by endless attachments: still closed at once, and none of them buffered.
    const { session } = await rawCustomer(ctx.server, transport);
    const rssBefore = rssMiB(ctx.server);
    await session.send(header);
    const chunk = Buffer.alloc(16 * 1024, 0x5a);
    const started = Date.now();
    let refusedPost;
    while (!session.isEnded && Date.now() - started < 10_000) {
      if (transport === "websocket") {
        if (!(await Promise.race([session.ws.sendBinary(chunk), session.ended.then(() => false)]))) break;
      } else {
        const res = await pollingPost(ctx.server, session.sid, `b${chunk.toString("base64")}`);
        if (res.status !== 200) {
          refusedPost = { status: res.status, text: res.text };
          break;
        }
      }
    }
    const ended = await session.endedWithin(5_000, `the server kept the session open while attachments kept coming for ${Date.now() - started} ms`);
    assert.ok(ended.at - started < 2_000, `closed only ${ended.at - started} ms after the header`);
    // (Over WebSocket the close frame itself may be lost: the attachments still in flight make
    // the server's TCP stack answer with a reset. The header-alone case above checks it.)
    if (refusedPost) assert.deepEqual(refusedPost, SESSION_UNKNOWN, "an attachment POST after the close");
    const grown = rssMiB(ctx.server) - rssBefore;
    assert.ok(grown < 32, `the server's memory grew by ${Math.round(grown)} MiB`);
    await assertSessionGone(ctx.server, session.sid, "45999999- with attachments");
    await assertStillServes(ctx.server);
  });

  test("an ack id beyond 64 bits is read as no ack id: the event runs, no ack comes, a clientMsgId retry is a duplicate", async () => {
    // socketioxide reads an ack id into an i64 and takes one that does not parse (so from 2^63 on)
    // for none at all: the event is handled as if sent without an ack. A client whose ack never
    // comes retries with the same clientMsgId, and that retry finds the stored message.
    const agent = await onlineAgent(ctx.server, transport);
    const accepted = (posted, what) => {
      if (transport === "polling") assert.deepEqual([posted.status, posted.text], [200, "ok"], `the POST of ${what}`);
    };
    for (const [name, ackId] of [["2^64", "18446744073709551616"], ["40 digits", "1234567890".repeat(4)]]) {
      const what = `ack id ${name}`;
      const customer = await rawCustomer(ctx.server, transport, agent);
      const { session } = customer;
      const before = session.received().length;

      accepted(await session.send(`42${ackId}["history",{}]`), `history with ${what}`);
      // The session goes on: the next packet is handled and acked.
      accepted(await session.send('4211["history",{}]'), "history with ack id 11");
      assertOk(await session.ack(11), `${what}: history with ack id 11 afterwards`);

      const clientMsgId = `big-ack-${name}`;
      accepted(await session.send(`42${ackId}${JSON.stringify(["private_message", { content: what, clientMsgId }])}`), `private_message with ${what}`);
      const delivered = await waitFor(agent.socket, "new_private_message", { where: (m) => m.senderId === customer.user.id });
      assert.deepEqual([delivered.content, delivered.clientMsgId], [what, clientMsgId], `${what}: the message the agent received`);
      accepted(await session.send(`4212${JSON.stringify(["private_message", { content: what, clientMsgId }])}`), "the retry with ack id 12");
      const retry = assertOk(await session.ack(12), `${what}: the retry with ack id 12`);
      assert.deepEqual(
        { id: retry.id, clientMsgId: retry.clientMsgId, duplicate: retry.duplicate },
        { id: delivered.id, clientMsgId, duplicate: true },
        `${what}: the retry's ack`,
      );

      // Stored and delivered once; and no ack but those of 11 and 12, half a second later still.
      await sleep(500);
      const fromCustomer = agent.socket.inbox.all("new_private_message").filter((m) => m.senderId === customer.user.id);
      assert.deepEqual(fromCustomer.map((m) => m.id), [delivered.id], `${what}: what the agent received`);
      const history = assertOk(await ack(agent.socket, "history", { peerId: customer.user.id }), `${what}: the agent's history`);
      assert.deepEqual(history.messages.map((m) => m.id), [customer.first.id, delivered.id], `${what}: messages stored`);
      const acks = session.received().slice(before).filter((p) => typeof p === "string" && /^4[36]/.test(p));
      assert.deepEqual(acks.map((p) => p.match(/^4[36](?:\d+-)?(\d*)/)[1]).sort(), ["11", "12"], `${what}: acks received`);
      assert.equal(session.isEnded, false, `${what}: the server ended the session`);
    }
    // The largest ack id that fits is acked as usual.
    const { session } = await rawCustomer(ctx.server, transport);
    await session.send('429223372036854775807["history",{}]');
    assertOk(await session.ack("9223372036854775807"), "ack id 2^63-1");
    await assertStillServes(ctx.server);
  });
});

describe("WebSocket frames", () => {
  const ctx = useServerOnDemand({ env: { KEFU_MESSAGE_RATE_LIMIT: "0" } });
  const MAX = maxPayload();

  /**
   * The server ended each of `customers` (what they sent -> rawCustomer) within 5 s, with a close
   * frame of any code or without one, and no longer knows their sessions; and nothing they sent
   * reached `agent` or was stored (their conversations hold only their first messages). Returns
   * how each connection ended, for diagnostics.
   */
  async function assertClosedUndelivered(agent, customers, code) {
    const outcomes = {};
    for (const [what, { session }] of Object.entries(customers)) outcomes[what] = await endOf(session);
    assert.deepEqual(outcomes, Object.fromEntries(Object.keys(customers).map((what) => [what, "ended and gone"])), "how the sessions ended");
    const senders = Object.values(customers).map((c) => c.user.id);
    await expectNo(agent.socket, "new_private_message", { ms: 500, where: (m) => senders.includes(m.senderId) });
    for (const [what, customer] of Object.entries(customers)) {
      const history = assertOk(await ack(agent.socket, "history", { peerId: customer.user.id }), `${what}: the agent's history`);
      assert.deepEqual(history.messages.map((m) => m.id), [customer.first.id], `${what}: a message was stored`);
    }
    const closings = {};
    for (const [what, { session }] of Object.entries(customers)) closings[what] = closing(session);
    assert.deepEqual(closings, Object.fromEntries(Object.keys(customers).map((what) => [what, `close frame ${code}`])), "close codes");
    return closings;
  }

  /** `customer`'s message acked with `id` reached `agent` with `content`. */
  async function assertDelivered(agent, customer, id, content) {
    const stored = assertOk(await customer.session.ack(id), JSON.stringify(content));
    const got = await waitFor(agent.socket, "new_private_message", { where: (m) => m.id === stored.id });
    assert.equal(got.content, content);
  }

  test("a frame or message larger than the maximum payload closes with 1009", async (t) => {
    // Upstream engineioxide closes with no code; kefu's copy (vendor/engineioxide) says why.
    const agent = await onlineAgent(ctx.server, "websocket");
    // The limit is where the test thinks it is, and a delivered message is seen: exactly
    // max_payload (65,536 bytes) is a message like any other.
    const exact = await rawCustomer(ctx.server, "websocket", agent);
    await exact.session.ws.sendText(paddedMessage(5, "exactly the limit", MAX));
    await assertDelivered(agent, exact, 5, "exactly the limit");

    const oneFrame = await rawCustomer(ctx.server, "websocket", agent);
    await oneFrame.session.ws.sendText(paddedMessage(6, "one frame over the limit", MAX + 1));

    // A header announcing 1 GiB: refused at the header, without waiting for the payload.
    const announced = await rawCustomer(ctx.server, "websocket", agent);
    await announced.session.ws.sendFrame({ opcode: OPCODE.binary, length: 1 << 30 });

    // Fragments each under the limit, the message over it.
    const fragmented = await rawCustomer(ctx.server, "websocket", agent);
    const message = Buffer.from(paddedMessage(7, "fragments over the limit", 4 * MAX));
    const step = MAX / 2;
    for (let at = 0; at < message.length && !fragmented.session.isEnded; at += step) {
      await fragmented.session.ws.sendFrame({ opcode: at === 0 ? OPCODE.text : OPCODE.continuation, fin: at + step >= message.length, payload: message.subarray(at, at + step) });
    }
    const closings = await assertClosedUndelivered(agent, {
      [`one ${MAX + 1}-byte frame`]: oneFrame,
      "a header announcing 1 GiB": announced,
      [`${4 * MAX} bytes in ${step}-byte fragments`]: fragmented,
    }, 1009);
    t.diagnostic(`how the connections ended: ${JSON.stringify(closings)}`);
    await assertStillServes(ctx.server);
  });

  test("invalid UTF-8 in a text frame closes with 1007", async (t) => {
    // Upstream engineioxide closes with no code; kefu's copy (vendor/engineioxide) says why.
    const agent = await onlineAgent(ctx.server, "websocket");
    // Valid UTF-8 split inside a character, across a continuation, is a message like any other.
    const split = await rawCustomer(ctx.server, "websocket", agent);
    await split.session.ws.sendFrame({ opcode: OPCODE.text, fin: false, payload: Buffer.concat([Buffer.from('428["private_message",{"content":"caf'), Buffer.from([0xc3])]) });
    await split.session.ws.sendFrame({ opcode: OPCODE.continuation, payload: Buffer.concat([Buffer.from([0xa9]), Buffer.from('"}]')]) });
    await assertDelivered(agent, split, 8, "café");

    const single = await rawCustomer(ctx.server, "websocket", agent);
    await single.session.ws.sendFrame({ opcode: OPCODE.text, payload: Buffer.concat([Buffer.from('42["private_message",{"content":"bad '), Buffer.from([0xc3, 0x28, 0xff]), Buffer.from('"}]')]) });
    // A UTF-16 surrogate (ED A0 80), in a continuation frame.
    const fragmented = await rawCustomer(ctx.server, "websocket", agent);
    await fragmented.session.ws.sendFrame({ opcode: OPCODE.text, fin: false, payload: Buffer.from('42["private_message",{"content":"surrogate ') });
    await fragmented.session.ws.sendFrame({ opcode: OPCODE.continuation, payload: Buffer.concat([Buffer.from([0xed, 0xa0, 0x80]), Buffer.from('"}]')]) });
    const closings = await assertClosedUndelivered(agent, { "in one frame": single, "in a continuation frame": fragmented }, 1007);
    t.diagnostic(`how the connections ended: ${JSON.stringify(closings)}`);
    await assertStillServes(ctx.server);
  });

  test("a frame with RSV bits set closes with 1002", async (t) => {
    // Upstream engineioxide closes with no code; kefu's copy (vendor/engineioxide) says why.
    const agent = await onlineAgent(ctx.server, "websocket");
    // The same frame without them is a message like any other.
    const plain = await rawCustomer(ctx.server, "websocket", agent);
    await plain.session.ws.sendFrame({ opcode: OPCODE.text, payload: Buffer.from('429["private_message",{"content":"RSV 000"}]') });
    await assertDelivered(agent, plain, 9, "RSV 000");

    const refused = {};
    for (const rsv of [0b100, 0b010, 0b001]) {
      const bits = `RSV ${rsv.toString(2).padStart(3, "0")}`;
      const customer = await rawCustomer(ctx.server, "websocket", agent);
      await customer.session.ws.sendFrame({ opcode: OPCODE.text, rsv, payload: Buffer.from(`42["private_message",{"content":"${bits}"}]`) });
      refused[bits] = customer;
    }
    t.diagnostic(`how the connections ended: ${JSON.stringify(await assertClosedUndelivered(agent, refused, 1002))}`);
    await assertStillServes(ctx.server);
  });

  test("a refused Socket.IO packet ends the session, every time", async (t) => {
    // 200 tries: a session left open now and then must fail this test every time, not now and
    // then. Each gets the Engine.IO close packet "1" and a close frame (no code: the WebSocket
    // itself was fine); upstream engineioxide sometimes dropped the connection before the frame.
    const outcomes = {};
    const closings = {};
    for (let i = 0; i < 200; i++) {
      const { session } = await rawCustomer(ctx.server, "websocket");
      await session.send("42[]");
      tally(outcomes, await endOf(session));
      tally(closings, closing(session));
    }
    t.diagnostic(`how the connections ended: ${JSON.stringify(closings)}`);
    assert.deepEqual(outcomes, { "ended and gone": 200 }, "how 200 sessions refused for 42[] ended");
    assert.deepEqual(closings, { '"1", close frame 1005': 200 }, "their close frames");
    await assertStillServes(ctx.server);
  });

  test("20,000 one-byte continuation fragments are delivered as one message", async () => {
    const { session } = await rawCustomer(ctx.server, "websocket");
    const frames = oneByteFragments(paddedHistory(9, 20_000));
    const started = Date.now();
    // In slices, as a client writing frame after frame would.
    for (let at = 0; at < frames.length; at += 7 * 1000) await session.ws.send(frames.subarray(at, at + 7 * 1000));
    assertOk(await session.ack(9, { timeout: 15_000 }), "the fragmented history");
    assert.ok(Date.now() - started < 15_000, "took too long");
    await assertAlive(session, "after the fragmented message");
    await assertStillServes(ctx.server);
  });
});

describe("HTTP and long-polling limits", () => {
  const ctx = useServerOnDemand({ env: { KEFU_MESSAGE_RATE_LIMIT: "0" } });
  const MAX = maxPayload();

  test("a polling POST over the maximum payload is 413 and ends the session", async () => {
    // The limit is where the test thinks it is: exactly max_payload is accepted.
    const exact = await rawCustomer(ctx.server, "polling");
    const ok = await exact.session.send(paddedHistory(3, MAX));
    assert.deepEqual([ok.status, ok.text], [200, "ok"], `a ${MAX}-byte POST`);
    assertOk(await exact.session.ack(3), `a ${MAX}-byte POST`);

    const over = await rawCustomer(ctx.server, "polling");
    const res = await over.session.send(paddedHistory(4, MAX + 1));
    assert.equal(res.status, 413, `a ${MAX + 1}-byte POST: ${res.status} ${res.text}`);
    const ended = await over.session.endedWithin(5_000);
    assert.deepEqual({ status: ended.status, text: ended.text }, SESSION_UNKNOWN);
    await assertStillServes(ctx.server);
  });

  test("a 64 MiB polling POST is cut off after the limit: 413 or closed, promptly, the rest never read", async (t) => {
    // Whether the 413 reaches the client is not asserted: the server closes the connection with
    // the rest of the body unread, and the kernel may answer the client's next bytes with a reset
    // that discards the 413 before the client reads it.
    const ANSWERS = ["HTTP/1.1 413 Payload Too Large", "no answer, connection closed"];
    const pid = ctx.server.child.pid;
    const rssBefore = residentBytes(pid);
    resetPeakResident(pid);
    const outcomes = {};
    let mostTaken = 0;
    for (let i = 0; i < 20; i++) {
      const { sid } = await pollingHandshake(ctx.server);
      // The timeout is the promptness: an answer or a close within 5 s, or this rejects.
      const { statusLine, bodyBytesWritten } = await rawHttpUpload(ctx.server, `${EIO_PATH}&transport=polling&sid=${sid}`, 64 * MiB, { timeout: 5_000 });
      tally(outcomes, statusLine || "no answer, connection closed");
      mostTaken = Math.max(mostTaken, bodyBytesWritten);
      await assertSessionGone(ctx.server, sid, "64 MiB POST");
    }
    const grown = peakResidentBytes(pid) - rssBefore;
    t.diagnostic(`answers: ${JSON.stringify(outcomes)}; most taken: ${(mostTaken / MiB).toFixed(1)} MiB; peak memory +${(grown / MiB).toFixed(1)} MiB`);
    const others = Object.keys(outcomes).filter((answer) => !ANSWERS.includes(answer));
    assert.deepEqual(others, [], `answers to 20 POSTs of 64 MiB: ${JSON.stringify(outcomes)}`);
    // What the client could hand to the kernel bounds what the server read: the limit (64 KiB)
    // plus the socket buffers of both ends.
    assert.ok(mostTaken < 16 * MiB, `the server took ${(mostTaken / MiB).toFixed(1)} MiB of a 64 MiB body before stopping`);
    assert.ok(grown < 16 * MiB, `the server's peak memory grew by ${(grown / MiB).toFixed(1)} MiB during 20 POSTs of 64 MiB`);
    await assertStillServes(ctx.server);
  });

  test("200,000 Engine.IO packets in one POST are 413 with memory bounded", async () => {
    const customer = await rawCustomer(ctx.server, "polling");
    const rssBefore = rssMiB(ctx.server);
    // The server answers 413 as soon as the body passes the limit and closes: a client still
    // writing may see the connection closed (EPIPE, ECONNRESET) before it reads the answer.
    const refusal = async (session, body) => {
      try {
        return String((await session.send(body)).status);
      } catch (err) {
        if (err.code === "EPIPE" || err.code === "ECONNRESET") return "closed";
        throw err;
      }
    };
    const body = Array(200_000).fill("3").join(SEPARATOR);
    assert.match(await refusal(customer.session, body), /^(413|closed)$/, `${body.length}-byte POST of 200,000 packets`);
    await assertSessionGone(ctx.server, customer.session.sid, "200,000 packets");
    // And with Socket.IO events, the costlier kind of packet.
    const events = await rawCustomer(ctx.server, "polling");
    assert.match(await refusal(events.session, Array(200_000).fill('42["heartbeat"]').join(SEPARATOR)), /^(413|closed)$/, "POST of 200,000 events");
    await assertSessionGone(ctx.server, events.session.sid, "200,000 events");
    const grown = rssMiB(ctx.server) - rssBefore;
    assert.ok(grown < 32, `the server's memory grew by ${Math.round(grown)} MiB`);
    await assertStillServes(ctx.server);
  });

  test("a 64 KiB request header is refused with 431", async () => {
    const res = await rawHttp(ctx.server, `GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${"a".repeat(64 * 1024)}\r\n\r\n`);
    assert.equal(res.status, 431, `64 KiB header: ${res.statusLine || "connection closed without an answer"}`);
    const handshake = await rawHttp(ctx.server, `GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: 127.0.0.1\r\nCookie: ${"a".repeat(64 * 1024)}\r\n\r\n`);
    assert.equal(handshake.status, 431, `Engine.IO handshake with a 64 KiB cookie: ${handshake.statusLine || "connection closed without an answer"}`);
    await assertStillServes(ctx.server);
  });

  test("a request with 5,000 headers is refused with 431", async () => {
    const headers = Array.from({ length: 5_000 }, (_, i) => `X-H${i}: v\r\n`).join("");
    const res = await rawHttp(ctx.server, `GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n${headers}\r\n`);
    assert.equal(res.status, 431, `5,000 headers: ${res.statusLine || "connection closed without an answer"}`);
    const upgrade = await rawHttp(ctx.server, `GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${headers}\r\n`);
    assert.equal(upgrade.status, 431, `WebSocket upgrade with 5,000 headers: ${upgrade.statusLine || "connection closed without an answer"}`);
    await assertStillServes(ctx.server);
  });
});

describe("slow and half-open clients", () => {
  test("slowloris polling POSTs (one byte a second) are cut off 10 to 20 s after their headers", { timeout: 60_000 }, async (t) => {
    const server = await serverForTest(t, { env: { KEFU_MESSAGE_RATE_LIMIT: "0" } });
    /**
     * crates/kefu/src/http/bodies.rs: BODY_WINDOW. A body must bring 40 KiB (or its rest) in each
     * 10 s window, so a byte a second is cut off when its first window ends, well before the
     * long-polling upload deadline of 20 s (crates/kefu/src/http/mod.rs: POLLING_UPLOAD_DEADLINE).
     */
    const DEADLINE_MS = 10_000;
    /** How late after the deadline a cut-off still counts: the 20 s the upload may take, and as much again. */
    const LATEST_MS = 30_000;
    const ANSWERS = ["HTTP/1.1 408 Request Timeout", "no answer, connection closed"];
    const body = '42["heartbeat"]'.padEnd(1_000, " ");
    const slow = [];
    for (let i = 0; i < 20; i++) {
      const { sid } = await pollingHandshake(server);
      const socket = net.connect(server.port, "127.0.0.1");
      socket.on("error", () => {});
      let answer = "";
      socket.on("data", (chunk) => (answer += chunk));
      const closed = new Promise((resolve) => socket.on("close", () => resolve({ at: performance.now(), answer: answer.split("\r\n")[0] || "no answer, connection closed" })));
      const headersAt = performance.now();
      socket.write(`POST /socket.io/?EIO=4&transport=polling&sid=${sid} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain;charset=UTF-8\r\nContent-Length: ${body.length}\r\n\r\n`);
      let sentBytes = 0;
      const timer = setInterval(() => {
        if (!socket.destroyed) socket.write(body[sentBytes++]);
      }, 1_000);
      closed.then(() => clearInterval(timer));
      t.after(() => {
        clearInterval(timer);
        socket.destroy();
      });
      slow.push({ socket, headersAt, closed });
    }
    // Everyone else is served while the slow POSTs hold their connections.
    await assertStillServes(server);
    const last = slow.at(-1).headersAt;
    const outcomes = await within(
      last + LATEST_MS + 1_000 - performance.now(),
      Promise.all(slow.map((s) => s.closed)),
      () => `the server still holds slow POSTs open ${LATEST_MS} ms after their headers (${slow.filter((s) => !s.socket.destroyed).length} of ${slow.length} open)`,
    );
    const afters = outcomes.map(({ at }, i) => Math.round(at - slow[i].headersAt));
    const cutOff = outcomes.map(({ answer }, i) => {
      const after = afters[i];
      // The deadline starts once the server has the headers, after `headersAt`: never sooner
      // (100 ms for the clocks).
      const when = after < DEADLINE_MS - 100 ? `before the deadline (${after} ms)` : after > LATEST_MS ? `late (${after} ms)` : "10 to 30 s after the headers";
      return `${ANSWERS.includes(answer) ? answer : `unexpected answer ${answer}`}, ${when}`;
    });
    const counts = {};
    for (const outcome of cutOff) tally(counts, outcome);
    t.diagnostic(`how 20 slow POSTs ended: ${JSON.stringify(counts)}; after ${Math.min(...afters)} to ${Math.max(...afters)} ms`);
    const expected = ANSWERS.map((answer) => `${answer}, 10 to 30 s after the headers`);
    assert.deepEqual(Object.keys(counts).filter((outcome) => !expected.includes(outcome)), [], `how 20 slow POSTs ended: ${JSON.stringify(counts)}`);
    await assertStillServes(server);
  });

  test("2,000 half-open Engine.IO sessions (no Socket.IO CONNECT) are closed after the connect timeout", { timeout: 100_000 }, async (t) => {
    const server = await serverForTest(t, { env: { KEFU_MESSAGE_RATE_LIMIT: "0" } });
    const rssBefore = rssMiB(server);
    const HALF = 1_000;
    // WebSockets that answer every ping, so only the connect timeout can end them.
    const sockets = [];
    for (let i = 0; i < HALF; i += 50) {
      sockets.push(...(await Promise.all(Array.from({ length: 50 }, () => RawSession.open(server, "websocket")))));
    }
    // Long-polling sessions opened and never polled again.
    const polling = [];
    for (let i = 0; i < HALF; i += 50) {
      polling.push(...(await Promise.all(Array.from({ length: 50 }, () => pollingHandshake(server)))));
    }
    const allOpen = Date.now();
    const rssOpen = rssMiB(server);
    assert.equal(sockets.filter((s) => s.isEnded).length, 0, "half-open WebSockets closed early");
    await assertStillServes(server);

    const endedAll = await within(
      CONNECT_TIMEOUT_MS + 15_000 - (Date.now() - allOpen),
      Promise.all(sockets.map((s) => s.ended)),
      () => `half-open WebSockets still open ${CONNECT_TIMEOUT_MS + 15_000} ms after they opened (${sockets.filter((s) => !s.isEnded).length} of ${HALF})`,
    );
    for (const ended of endedAll) {
      assert.equal(ended.eioClose, true, "a half-open WebSocket was closed without the Engine.IO close packet");
      assert.equal(ended.code, 1005, "close code of a half-open WebSocket");
    }
    const gone = await Promise.all(polling.map(({ sid }) => pollingGet(server, sid, { timeout: 10_000 }).then((r) => r.status === SESSION_UNKNOWN.status && r.text === SESSION_UNKNOWN.text)));
    assert.equal(gone.filter(Boolean).length, HALF, "half-open polling sessions still exist after the connect timeout");
    assert.ok(rssOpen - rssBefore < 256, `2,000 half-open sessions took ${Math.round(rssOpen - rssBefore)} MiB`);
    await assertStillServes(server);
  });
});
