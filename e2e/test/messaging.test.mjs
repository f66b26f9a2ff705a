// private_message: acks, delivery, ordering, several tabs, idempotent retries.
import assert from "node:assert/strict";
import { ack, assertAckError, assertOk, connect, expectNo, sleep, waitFor } from "../lib/client.mjs";
import { assertId, assertTimestamp, forEachTransport, pair, send, test, useServer } from "../lib/harness.mjs";

forEachTransport("private messages", (transport) => {
  const ctx = useServer({ env: { KEFU_MESSAGE_RATE_LIMIT: "0" } });

  function assertAck(reply, { conversationId, clientMsgId }) {
    assert.equal(reply.ok, true);
    assertId(reply.id, "ack.id");
    assert.ok(Number.isInteger(reply.seq) && reply.seq >= 0, `ack.seq must be an integer, got ${reply.seq}`);
    assert.equal(reply.conversationId, conversationId);
    assertTimestamp(reply.createdAt, "ack.createdAt");
    assert.equal(reply.duplicate, false);
    if (clientMsgId !== undefined) assert.equal(reply.clientMsgId, clientMsgId);
  }

  test("customer to agent: the ack has every documented field and the agent gets the message", async () => {
    const { agent, customer, conversationId, first } = await pair(ctx.server, transport);
    assertId(conversationId, "conversationId");
    const reply = await send(customer.socket, { receiverId: agent.user.id, content: "hello 你好 👋", clientMsgId: "c-1" });
    assertAck(reply, { conversationId, clientMsgId: "c-1" });

    const message = await waitFor(agent.socket, "new_private_message");
    assert.deepEqual(message, {
      id: reply.id,
      seq: reply.seq,
      conversationId,
      senderId: customer.user.id,
      receiverId: agent.user.id,
      kind: "text",
      content: "hello 你好 👋",
      timestamp: reply.createdAt,
      clientMsgId: "c-1",
    });

    // The ack comes after the message is stored: history already has it, after the first message.
    const history = assertOk(await ack(agent.socket, "history", { peerId: customer.user.id }));
    assert.deepEqual(history.messages.map((m) => m.id), [first.id, reply.id]);
    assert.deepEqual(history.messages[1], message);
    assert.equal(reply.seq, first.seq + 1);
    assert.equal(reply.started, undefined, "only the message that started the conversation says where it went");
  });

  test("a customer may omit receiverId once it has an agent", async () => {
    const { agent, customer, conversationId } = await pair(ctx.server, transport);
    const reply = await send(customer.socket, { content: "no receiver given" });
    assertAck(reply, { conversationId });
    const message = await waitFor(agent.socket, "new_private_message");
    assert.equal(message.id, reply.id);
    assert.equal(message.receiverId, agent.user.id);
  });

  test("agent to customer: the customer gets the message; clientMsgId is null when none was given", async () => {
    const { agent, customer, conversationId } = await pair(ctx.server, transport);
    const reply = await send(agent.socket, { receiverId: customer.user.id, content: "how can I help?" });
    assertAck(reply, { conversationId });
    assert.ok(reply.clientMsgId === null || reply.clientMsgId === undefined, `ack.clientMsgId: ${reply.clientMsgId}`);
    const message = await waitFor(customer.socket, "new_private_message");
    assert.deepEqual(message, {
      id: reply.id,
      seq: reply.seq,
      conversationId,
      senderId: agent.user.id,
      receiverId: customer.user.id,
      kind: "text",
      content: "how can I help?",
      timestamp: reply.createdAt,
      clientMsgId: null,
    });
  });

  test("seq increases by 1 per message of a conversation, whoever sends, and per conversation", async () => {
    const one = await pair(ctx.server, transport);
    const two = await pair(ctx.server, transport);
    // Each conversation starts with its first message, seq 1.
    const seqs = { one: [one.first.seq], two: [two.first.seq] };
    for (let i = 0; i < 4; i++) {
      seqs.one.push((await send(one.customer.socket, { content: `c${i}` })).seq);
      seqs.two.push((await send(two.agent.socket, { receiverId: two.customer.user.id, content: `x${i}` })).seq);
      seqs.one.push((await send(one.agent.socket, { receiverId: one.customer.user.id, content: `a${i}` })).seq);
    }
    for (const [name, list] of Object.entries(seqs)) {
      list.forEach((seq, i) => assert.equal(seq, list[0] + i, `conversation ${name}: seqs ${list}`));
    }
    assert.deepEqual([seqs.one[0], seqs.two[0]], [1, 1], "a new conversation's seq does not depend on other conversations");
  });

  test("a burst of 200 messages from both sides arrives complete and in seq order", async () => {
    const { agent, customer } = await pair(ctx.server, transport);
    const count = 100;
    const fromCustomer = Array.from({ length: count }, (_, i) =>
      ack(customer.socket, "private_message", { content: `c-${i}`, clientMsgId: `burst-c-${i}` }),
    );
    const fromAgent = Array.from({ length: count }, (_, i) =>
      ack(agent.socket, "private_message", { receiverId: customer.user.id, content: `a-${i}`, clientMsgId: `burst-a-${i}` }),
    );
    const customerAcks = (await Promise.all(fromCustomer)).map((r) => assertOk(r));
    const agentAcks = (await Promise.all(fromAgent)).map((r) => assertOk(r));

    const allSeqs = [...customerAcks, ...agentAcks].map((r) => r.seq).sort((x, y) => x - y);
    allSeqs.forEach((seq, i) => assert.equal(seq, allSeqs[0] + i, "the 200 acked seqs are not contiguous"));

    const atAgent = await agent.socket.inbox.take("new_private_message", count, { timeout: 15_000 });
    const atCustomer = await customer.socket.inbox.take("new_private_message", count, { timeout: 15_000 });
    for (const [who, received, acks] of [["agent", atAgent, customerAcks], ["customer", atCustomer, agentAcks]]) {
      for (let i = 1; i < received.length; i++) {
        assert.ok(received[i].seq > received[i - 1].seq, `${who} got seq ${received[i].seq} after ${received[i - 1].seq}`);
      }
      const byId = new Map(acks.map((r, i) => [r.id, i]));
      assert.deepEqual(new Set(received.map((m) => m.id)), new Set(byId.keys()), `${who} did not get exactly the acked messages`);
      for (const m of received) {
        const prefix = who === "agent" ? "c" : "a";
        assert.equal(m.content, `${prefix}-${byId.get(m.id)}`, "content does not match its ack");
        assert.equal(m.seq, acks[byId.get(m.id)].seq);
      }
    }
    // Nobody got a message twice or got their own.
    await expectNo(agent.socket, "new_private_message", { ms: 200, where: (m) => m.senderId === agent.user.id });
    assert.equal(agent.socket.inbox.all("new_private_message").length, count);
    assert.equal(customer.socket.inbox.all("new_private_message").length, count);
  });

  test("an agent with two tabs gets every message on both; the sending tab does not get its own message", async () => {
    const { agent, customer } = await pair(ctx.server, transport);
    const secondTab = await connect(ctx.server, agent.token, { transport });
    assertOk(await ack(secondTab, "login", { userId: agent.user.id }));

    const incoming = await send(customer.socket, { content: "to both tabs" });
    assert.equal((await waitFor(agent.socket, "new_private_message")).id, incoming.id);
    assert.equal((await waitFor(secondTab, "new_private_message")).id, incoming.id);

    const outgoing = await send(agent.socket, { receiverId: customer.user.id, content: "from tab one", clientMsgId: "tab-1" });
    const atCustomer = await waitFor(customer.socket, "new_private_message");
    const copy = await waitFor(secondTab, "new_private_message");
    assert.equal(atCustomer.id, outgoing.id);
    assert.deepEqual(copy, atCustomer, "the other tab gets the same message object");
    assert.equal(copy.senderId, agent.user.id);
    await expectNo(agent.socket, "new_private_message", { where: (m) => m.id === outgoing.id });
    await expectNo(customer.socket, "new_private_message", { ms: 0, where: (m) => m.senderId === customer.user.id });
  });

  test("a customer with two tabs gets the agent's messages on both and a copy of its own on the other", async () => {
    const { agent, customer } = await pair(ctx.server, transport);
    const secondTab = await connect(ctx.server, customer.token, { transport });
    assertOk(await ack(secondTab, "login", { userId: customer.user.id }));

    const fromAgent = await send(agent.socket, { receiverId: customer.user.id, content: "hi both" });
    assert.equal((await waitFor(customer.socket, "new_private_message")).id, fromAgent.id);
    assert.equal((await waitFor(secondTab, "new_private_message")).id, fromAgent.id);

    const fromCustomer = await send(secondTab, { content: "from tab two" });
    assert.equal((await waitFor(agent.socket, "new_private_message")).id, fromCustomer.id);
    assert.equal((await waitFor(customer.socket, "new_private_message", { where: (m) => m.id === fromCustomer.id })).content, "from tab two");
    await expectNo(secondTab, "new_private_message", { where: (m) => m.id === fromCustomer.id });
  });

  test("a retry with the same clientMsgId returns the first message, duplicate:true, delivered once", async () => {
    const { agent, customer, first: opening } = await pair(ctx.server, transport);
    const first = await send(customer.socket, { content: "only once", clientMsgId: "retry-1" });
    const second = await send(customer.socket, { content: "only once", clientMsgId: "retry-1" });
    assert.equal(first.duplicate, false);
    assert.equal(second.duplicate, true);
    assert.equal(second.id, first.id);
    assert.equal(second.seq, first.seq);
    assert.equal(second.conversationId, first.conversationId);
    assert.equal(second.createdAt, first.createdAt);
    assert.equal(second.clientMsgId, "retry-1");

    await waitFor(agent.socket, "new_private_message");
    await sleep(400);
    assert.equal(agent.socket.inbox.all("new_private_message").length, 1, "the retry was delivered again");

    const history = assertOk(await ack(agent.socket, "history", { peerId: customer.user.id }));
    assert.deepEqual(history.messages.map((m) => m.id), [opening.id, first.id]);

    // The next new message takes the next seq: the retry used none.
    const next = await send(customer.socket, { content: "next", clientMsgId: "retry-2" });
    assert.equal(next.seq, first.seq + 1);
  });

  test("two concurrent sends with the same clientMsgId store one message", async () => {
    const { agent, customer, first } = await pair(ctx.server, transport);
    const replies = await Promise.all([
      ack(customer.socket, "private_message", { content: "racing", clientMsgId: "race-1" }),
      ack(customer.socket, "private_message", { content: "racing", clientMsgId: "race-1" }),
    ]);
    replies.forEach((r) => assertOk(r));
    assert.equal(replies[0].id, replies[1].id);
    assert.deepEqual(replies.map((r) => r.duplicate).sort(), [false, true]);
    const history = assertOk(await ack(agent.socket, "history", { peerId: customer.user.id }));
    assert.deepEqual(history.messages.map((m) => m.id), [first.id, replies[0].id]);
  });

  test("the same clientMsgId from another sender is another message", async () => {
    const { agent, customer } = await pair(ctx.server, transport);
    const mine = await send(customer.socket, { content: "mine", clientMsgId: "shared-id" });
    const theirs = await send(agent.socket, { receiverId: customer.user.id, content: "theirs", clientMsgId: "shared-id" });
    assert.equal(theirs.duplicate, false);
    assert.notEqual(theirs.id, mine.id);
    assert.equal(theirs.seq, mine.seq + 1);
  });

  test("clientMsgId must be 1 to 64 characters", async () => {
    const { customer } = await pair(ctx.server, transport);
    assertAckError(await ack(customer.socket, "private_message", { content: "x", clientMsgId: "" }), "invalid_payload", "empty clientMsgId");
    assertAckError(await ack(customer.socket, "private_message", { content: "x", clientMsgId: "k".repeat(65) }), "invalid_payload", "65 characters");
    assertAckError(await ack(customer.socket, "private_message", { content: "x", clientMsgId: 7 }), "invalid_payload", "a number");
    const ok = await send(customer.socket, { content: "x", clientMsgId: "k".repeat(64) });
    assert.equal(ok.clientMsgId, "k".repeat(64));
  });
});
