// Reconnect and resync with history(afterSeq), and a full server restart mid-conversation.
import assert from "node:assert/strict";
import { request } from "../lib/api.mjs";
import { ack, assertOk, connect, waitFor, waitForDisconnect } from "../lib/client.mjs";
import { forEachTransport, onlineAgent, onlineCustomer, pair, send, serverForTest, test, useServer } from "../lib/harness.mjs";

forEachTransport("reconnect and resync", (transport) => {
  const ctx = useServer({ env: { KEFU_MESSAGE_RATE_LIMIT: "0" } });

  test("an agent that was away gets exactly the missed messages with history(afterSeq)", async () => {
    const { agent, customer } = await pair(ctx.server, transport);
    await send(customer.socket, { content: "before 1" });
    const seen = await send(customer.socket, { content: "before 2" });
    await agent.socket.inbox.take("new_private_message", 2);
    const lastSeq = agent.socket.inbox.all("new_private_message").at(-1).seq;
    assert.equal(lastSeq, seen.seq);

    agent.socket.disconnect();
    const missed = [];
    for (let i = 0; i < 5; i++) missed.push(await send(customer.socket, { content: `while away ${i}` }));

    const socket = await connect(ctx.server, agent.token, { transport });
    assertOk(await ack(socket, "login", { userId: agent.user.id }));
    const reply = assertOk(await ack(socket, "history", { peerId: customer.user.id, afterSeq: lastSeq }));
    assert.deepEqual(reply.messages.map((m) => m.id), missed.map((m) => m.id));
    assert.deepEqual(reply.messages.map((m) => m.seq), missed.map((_, i) => lastSeq + 1 + i));
    assert.equal(reply.hasMore, false);
    assert.equal(reply.messages[0].content, "while away 0");

    // Live delivery resumes on the new connection.
    const live = await send(customer.socket, { content: "welcome back" });
    const got = await waitFor(socket, "new_private_message");
    assert.equal(got.id, live.id);
    assert.equal(got.seq, missed.at(-1).seq + 1);
  });

  test("socket.io-client's own reconnection after a dropped transport, then resync", async () => {
    const { agent, customer } = await pair(ctx.server, transport);
    const socket = await connect(ctx.server, customer.token, { transport, reconnection: true, reconnectionDelay: 100, reconnectionDelayMax: 200 });
    assertOk(await ack(socket, "login", { userId: customer.user.id }));
    const first = await send(agent.socket, { receiverId: customer.user.id, content: "first" });
    assert.equal((await waitFor(socket, "new_private_message")).id, first.id);

    socket.io.engine.close(); // the connection drops as if the network went away
    await waitForDisconnect(socket);
    const reconnected = new Promise((resolve) => socket.once("connect", resolve));
    const missed = [];
    for (let i = 0; i < 3; i++) missed.push(await send(agent.socket, { receiverId: customer.user.id, content: `gap ${i}` }));
    await Promise.race([reconnected, new Promise((_, reject) => setTimeout(() => reject(new Error("no reconnect within 10 s")), 10_000))]);
    assertOk(await ack(socket, "login", { userId: customer.user.id }));

    const reply = assertOk(await ack(socket, "history", { afterSeq: first.seq }));
    const live = socket.inbox.all("new_private_message").filter((m) => m.seq > first.seq);
    // Merge by id as a client does: whatever arrived live plus history, no gaps, no duplicates.
    const merged = new Map([...live, ...reply.messages].map((m) => [m.id, m]));
    assert.deepEqual([...merged.keys()].sort(), missed.map((m) => m.id).sort());
    assert.deepEqual(reply.messages.map((m) => m.id), missed.map((m) => m.id));
    socket.disconnect();
  });
});

forEachTransport("server restart", (transport) => {
  test("tokens stay valid and the conversation continues after SIGTERM and a new start on the same storage", async (t) => {
    let server = await serverForTest(t, { env: { KEFU_MESSAGE_RATE_LIMIT: "0" } });
    const { agent, customer, conversationId, first } = await pair(server, transport, { message: { content: "hello", clientMsgId: "restart-first" } });
    const sent = [first];
    for (let i = 0; i < 3; i++) {
      sent.push(await send(customer.socket, { content: `c${i}`, clientMsgId: `restart-c${i}` }));
      sent.push(await send(agent.socket, { receiverId: customer.user.id, content: `a${i}` }));
    }
    const before = assertOk(await ack(agent.socket, "history", { peerId: customer.user.id }));

    const restarted = await server.restart();
    t.after(() => restarted.close());
    server = restarted;

    for (const who of [agent, customer]) {
      const me = await request(server, "GET", "/api/me", { token: who.token });
      assert.equal(me.status, 200, `token of ${who.user.role} after restart: ${me.text}`);
      assert.equal(me.body.user.id, who.user.id);
    }
    const agentSocket = await connect(server, agent.token, { transport });
    assertOk(await ack(agentSocket, "login", { userId: agent.user.id }));
    const customerSocket = await connect(server, customer.token, { transport });
    const login = assertOk(await ack(customerSocket, "login", { userId: customer.user.id }));
    assert.equal(login.csId, agent.user.id);
    assert.equal(login.conversationId, conversationId);
    assert.equal(login.ended, false);

    const after = assertOk(await ack(agentSocket, "history", { peerId: customer.user.id }));
    assert.deepEqual(after, before, "history changed across the restart");
    assert.deepEqual(after.messages.map((m) => m.id), sent.map((m) => m.id));

    // Idempotency survives too: a retry of a message sent before the restart is a duplicate,
    // also of the first one, which starts nothing again.
    const retry = await send(customerSocket, { content: "c0", clientMsgId: "restart-c0" });
    assert.equal(retry.duplicate, true);
    assert.equal(retry.id, sent[1].id);
    const firstRetry = await send(customerSocket, { content: "hello", clientMsgId: "restart-first" });
    assert.deepEqual([firstRetry.duplicate, firstRetry.id, firstRetry.seq, firstRetry.conversationId], [true, first.id, 1, conversationId]);

    const next = await send(customerSocket, { content: "after restart" });
    assert.equal(next.seq, sent.at(-1).seq + 1);
    assert.equal(next.conversationId, conversationId);
    assert.equal(next.started, undefined, "the open conversation was found again after the restart");
    assert.equal((await waitFor(agentSocket, "new_private_message")).id, next.id);
  });

  test("a conversation queued by a first message before a restart is assigned when an agent logs in after it", async (t) => {
    let server = await serverForTest(t);
    const customer = await onlineCustomer(server, transport);
    const first = await send(customer.socket, { content: "anyone?" });
    assert.deepEqual(first.started, { csId: null, queued: true });

    const restarted = await server.restart();
    t.after(() => restarted.close());
    server = restarted;

    const socket = await connect(server, customer.token, { transport });
    const waiting = assertOk(await ack(socket, "login", { userId: customer.user.id }));
    assert.deepEqual([waiting.csId, waiting.conversationId, waiting.queued, waiting.position], [null, first.conversationId, true, 1]);
    const agent = await onlineAgent(server, transport);
    const assigned = await waitFor(socket, "conversation_assigned");
    assert.deepEqual([assigned.conversationId, assigned.agentId], [first.conversationId, agent.user.id]);
    assert.equal((await waitFor(agent.socket, "conversation_assigned")).conversationId, first.conversationId);
    const history = assertOk(await ack(agent.socket, "history", { peerId: customer.user.id }));
    assert.deepEqual(history.messages.map((m) => [m.id, m.receiverId]), [[first.id, agent.user.id]]);
  });
});
