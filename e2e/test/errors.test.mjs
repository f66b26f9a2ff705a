// Every error code a client can reach, as an ack and as an `error` event.
import assert from "node:assert/strict";
import { request } from "../lib/api.mjs";
import { ack, ackWithin, assertAckError, assertOk, connect, expectNo, sleep, waitFor } from "../lib/client.mjs";
import { forEachTransport, onlineCustomer, pair, send, serverForTest, test, useServer } from "../lib/harness.mjs";
import { createDatabase, DB_KIND } from "../lib/server.mjs";
import { startProxy } from "../lib/proxy.mjs";

forEachTransport("error codes", (transport) => {
  const ctx = useServer({ env: { KEFU_MESSAGE_RATE_LIMIT: "0" } });

  test("invalid_payload: content missing, empty, a number, null; payload a string or missing; receiverId not an id", async () => {
    const { agent, customer, first } = await pair(ctx.server, transport);
    const cases = [
      ["content missing", [{ receiverId: agent.user.id }]],
      ["content empty", [{ receiverId: agent.user.id, content: "" }]],
      ["content a number", [{ receiverId: agent.user.id, content: 42 }]],
      ["content null", [{ receiverId: agent.user.id, content: null }]],
      ["content an array", [{ receiverId: agent.user.id, content: ["hi"] }]],
      ["payload a string", ["hello"]],
      ["payload a number", [7]],
      ["no payload", []],
      ["receiverId not an id", [{ receiverId: "abc", content: "hi" }]],
      ["receiverId negative", [{ receiverId: "-1", content: "hi" }]],
      ["senderId not an id", [{ senderId: "me", content: "hi" }]],
    ];
    for (const [what, args] of cases) {
      assertAckError(await ack(customer.socket, "private_message", ...args), "invalid_payload", what);
    }
    await expectNo(agent.socket, "new_private_message");
    assert.deepEqual(assertOk(await ack(agent.socket, "history", { peerId: customer.user.id })).messages.map((m) => m.id), [first.id]);
  });

  test("unknown_event: an event kefu does not have is answered at once, with an ack or as an `error` event", async () => {
    const { customer } = await pair(ctx.server, transport);
    const reply = await ackWithin(3000, customer.socket, "no_such_event", { hello: 1 });
    assertAckError(reply, "unknown_event", "an unknown event with an ack");
    assert.match(reply.error.message, /no_such_event/);
    customer.socket.emit("no_such_event_either");
    const error = await waitFor(customer.socket, "error");
    assert.deepEqual([error.event, error.code], ["no_such_event_either", "unknown_event"]);
    // The connection goes on working.
    assertOk(await ack(customer.socket, "heartbeat"));
  });

  test("without an ack callback a failing event yields an `error` event {event, code, message}", async () => {
    const { agent, customer } = await pair(ctx.server, transport);
    customer.socket.emit("private_message", { content: 42 });
    let error = await waitFor(customer.socket, "error");
    assert.equal(error.event, "private_message");
    assert.equal(error.code, "invalid_payload");
    assert.equal(typeof error.message, "string");
    assert.ok(error.message.length > 0);

    customer.socket.emit("private_message", { senderId: agent.user.id, content: "spoof" });
    error = await waitFor(customer.socket, "error");
    assert.deepEqual([error.event, error.code], ["private_message", "forbidden"]);

    agent.socket.emit("history", { conversationId: "987654321" });
    error = await waitFor(agent.socket, "error");
    assert.deepEqual([error.event, error.code], ["history", "not_found"]);

    customer.socket.emit("typing", { typing: "maybe" });
    error = await waitFor(customer.socket, "error");
    assert.deepEqual([error.event, error.code], ["typing", "invalid_payload"]);

    // A successful event without a callback is delivered and yields no error.
    customer.socket.emit("private_message", { content: "fire and forget" });
    assert.equal((await waitFor(agent.socket, "new_private_message")).content, "fire and forget");
    await sleep(300);
    assert.equal(customer.socket.inbox.all("error").length, 3, "a successful event yielded an error");
  });

  test("too_large above 8192 bytes of UTF-8; exactly 8192 bytes is accepted", async () => {
    const { agent, customer, first } = await pair(ctx.server, transport);
    assertAckError(await ack(customer.socket, "private_message", { content: "a".repeat(8193) }), "too_large", "8193 ASCII bytes");
    assertAckError(await ack(customer.socket, "private_message", { content: "€".repeat(2731) }), "too_large", "2731 characters, 8193 bytes");

    const ascii = await send(customer.socket, { content: "a".repeat(8192) });
    const twoByte = await send(customer.socket, { content: "é".repeat(4096) });
    const received = await agent.socket.inbox.take("new_private_message", 2);
    assert.deepEqual(received.map((m) => m.id), [ascii.id, twoByte.id]);
    assert.equal(received[0].content, "a".repeat(8192));
    assert.equal(received[1].content, "é".repeat(4096));
    const history = assertOk(await ack(agent.socket, "history", { peerId: customer.user.id }));
    assert.deepEqual(history.messages.map((m) => m.id), [first.id, ascii.id, twoByte.id], "a message over the limit was stored");
  });

  test("not_found: an unknown conversation, message or peer", async () => {
    const { agent, customer } = await pair(ctx.server, transport);
    assertAckError(await ack(customer.socket, "history", { conversationId: "987654321" }), "not_found", "history of an unknown conversation");
    assertAckError(await ack(agent.socket, "read", { peerId: customer.user.id, upToId: "987654321" }), "not_found", "read of an unknown message");
    assertAckError(await ack(agent.socket, "private_message", { receiverId: "987654321", content: "hi" }), "not_found", "message to an unknown user");
  });
});

forEachTransport("configured limits", (transport) => {
  test("KEFU_MAX_MESSAGE_BYTES sets the content limit", async (t) => {
    const server = await serverForTest(t, { env: { KEFU_MAX_MESSAGE_BYTES: "100" } });
    const { customer } = await pair(server, transport);
    assertAckError(await ack(customer.socket, "private_message", { content: "x".repeat(101) }), "too_large", "101 bytes");
    await send(customer.socket, { content: "x".repeat(100) });
  });

  test("rate_limited: a burst over the default rate is partly refused; accepted messages are all delivered", async (t) => {
    const server = await serverForTest(t, { env: { KEFU_MESSAGE_RATE_LIMIT: undefined } });
    const { agent, customer, first } = await pair(server, transport);
    await sleep(200); // the first message's token is back in the bucket (20/s)
    const started = Date.now();
    const replies = await Promise.all(
      Array.from({ length: 100 }, (_, i) => ack(customer.socket, "private_message", { content: `burst ${i}` })),
    );
    const elapsedSeconds = (Date.now() - started) / 1000;
    const accepted = replies.filter((r) => r.ok === true);
    const refused = replies.filter((r) => r.ok !== true);
    refused.forEach((r) => assertAckError(r, "rate_limited", "refused message"));
    assert.ok(accepted.length >= 40, `the burst of 40 must pass, only ${accepted.length} did`);
    assert.ok(refused.length > 0, "100 messages at once were all accepted");
    assert.ok(
      accepted.length <= 41 + Math.ceil(20 * elapsedSeconds),
      `${accepted.length} accepted in ${elapsedSeconds.toFixed(2)} s is over 20/s with a burst of 40`,
    );

    const delivered = await agent.socket.inbox.take("new_private_message", accepted.length, { timeout: 10_000 });
    assert.deepEqual(new Set(delivered.map((m) => m.id)), new Set(accepted.map((r) => r.id)));
    await sleep(300);
    assert.equal(agent.socket.inbox.all("new_private_message").length, accepted.length, "a refused message was delivered");
    const history = assertOk(await ack(agent.socket, "history", { peerId: customer.user.id, limit: 100 }));
    assert.deepEqual(history.messages.map((m) => m.id), [first.id, ...delivered.map((m) => m.id)], "a refused message was stored");

    // The limit is per connection: another tab of the same customer may send at once.
    const otherTab = await connect(server, customer.token, { transport });
    await send(otherTab, { content: "from another tab" });
    // And the limited connection recovers as its bucket refills.
    await sleep(1_100);
    await send(customer.socket, { content: "after a pause" });
  });

  test("KEFU_MESSAGE_RATE_LIMIT=0 turns the limit off", async (t) => {
    const server = await serverForTest(t, { env: { KEFU_MESSAGE_RATE_LIMIT: "0" } });
    const { customer } = await pair(server, transport);
    const replies = await Promise.all(
      Array.from({ length: 100 }, (_, i) => ack(customer.socket, "private_message", { content: `unlimited ${i}` })),
    );
    replies.forEach((r) => assertOk(r));
  });
});

forEachTransport("database unreachable", (transport) => {
  const skip = DB_KIND === "sqlite" && "needs a networked database (KEFU_E2E_DB=mysql or postgres)";
  test("unavailable while the database cannot be reached; nothing is stored; service resumes", { skip }, async (t) => {
    const database = await createDatabase();
    const proxy = await startProxy(database.host, database.port);
    const server = await serverForTest(t, { database, databaseUrl: database.urlVia("127.0.0.1", proxy.port) });
    // Registered after the server's own: the server stops while its database is reachable (with
    // it cut off, the users going offline are announced for up to 8 s before it gives up).
    t.after(() => proxy.close());
    const { agent, customer } = await pair(server, transport, { message: { content: "stored" } });
    // A customer that logged in but has not written yet: its first message will be refused.
    const newcomer = await onlineCustomer(server, transport, { csId: agent.user.id });

    proxy.cut();
    const [reply, firstReply] = await Promise.all([
      ackWithin(60_000, customer.socket, "private_message", { content: "lost", clientMsgId: "while-down" }),
      ackWithin(60_000, newcomer.socket, "private_message", { content: "first, lost", clientMsgId: "first-while-down" }),
    ]);
    assertAckError(reply, "unavailable", "message while the database is down");
    assertAckError(firstReply, "unavailable", "a first message while the database is down");
    const ready = await request(server, "GET", "/readyz", { timeout: 60_000 });
    assert.equal(ready.status, 503, ready.text);
    assert.deepEqual(ready.body, { status: "not ready", reason: "database unreachable" });
    const health = await request(server, "GET", "/healthz");
    assert.equal(health.status, 200, "/healthz answers while the process runs");

    proxy.restore();
    const deadline = Date.now() + 30_000;
    while ((await request(server, "GET", "/readyz", { timeout: 30_000 })).status !== 200) {
      assert.ok(Date.now() < deadline, "/readyz did not recover within 30 s of the database coming back");
      await sleep(250);
    }
    const history = assertOk(await ack(agent.socket, "history", { peerId: customer.user.id }));
    assert.deepEqual(history.messages.map((m) => m.content), ["stored"], "the refused message was stored");
    const again = await send(customer.socket, { content: "lost", clientMsgId: "while-down" });
    assert.equal(again.duplicate, false, "the refused message left a trace");

    // The refused first message started no conversation; sent again, it starts one.
    const listed = await request(server, "GET", "/api/conversations", { token: newcomer.token });
    assert.equal(listed.status, 200, listed.text);
    assert.deepEqual(listed.body.conversations, [], "a refused first message started a conversation");
    const first = await send(newcomer.socket, { content: "first, lost", clientMsgId: "first-while-down" });
    assert.equal(first.duplicate, false, "the refused first message left a trace");
    assert.equal(first.seq, 1);
    assert.deepEqual(first.started, { csId: agent.user.id, queued: false });
  });
});
