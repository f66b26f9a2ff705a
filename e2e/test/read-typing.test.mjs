// all_member / myUsersList unread counts, read receipts, typing indicators.
import assert from "node:assert/strict";
import { ack, assertAckError, assertOk, connect, expectNo, sleep, waitFor } from "../lib/client.mjs";
import { firstMessage, forEachTransport, onlineAgent, onlineCustomer, pair, send, test, useServer } from "../lib/harness.mjs";

forEachTransport("members and read receipts", (transport) => {
  const ctx = useServer();

  async function members(socket) {
    const reply = assertOk(await ack(socket, "all_member"), "all_member");
    assert.ok(Array.isArray(reply.users), `users: ${JSON.stringify(reply)}`);
    const emitted = await waitFor(socket, "myUsersList");
    assert.deepEqual(emitted, reply.users, "myUsersList differs from the ack's users");
    return reply.users;
  }

  test("all_member lists the agent's customer with its unread count, as ack and as myUsersList", async () => {
    const { agent, customer, conversationId } = await pair(ctx.server, transport);
    // The first message and three more are unread for the agent.
    for (let i = 0; i < 3; i++) await send(customer.socket, { content: `unread ${i}` });
    await send(agent.socket, { receiverId: customer.user.id, content: "my own messages do not count" });
    const lastMessage = await waitFor(customer.socket, "new_private_message");

    assert.deepEqual(await members(agent.socket), [
      {
        id: customer.user.id,
        role: "customer",
        username: customer.user.username,
        displayName: customer.user.displayName,
        message_count: 4,
        online: true,
        conversationId,
        lastMessage,
        offline: false,
        email: null,
        phone: null,
      },
    ]);
    assert.deepEqual(await members(customer.socket), [
      {
        id: agent.user.id,
        role: "agent",
        username: agent.user.username,
        displayName: agent.user.displayName,
        message_count: 1,
        online: true,
        conversationId,
        lastMessage,
        offline: false,
        email: null,
        phone: null,
      },
    ]);
  });

  test("a conversation is listed from its first message on, which is its lastMessage on both sides", async () => {
    const agent = await onlineAgent(ctx.server, transport);
    const customer = await onlineCustomer(ctx.server, transport, { csId: agent.user.id });
    assert.deepEqual(await members(agent.socket), [], "a customer that has not written is nobody's member");
    assert.deepEqual(await members(customer.socket), [], "a customer that has not written has no member");

    const first = await firstMessage(customer, agent, { content: "hello there", clientMsgId: "first-1" });
    const lastMessage = {
      id: first.id,
      seq: 1,
      conversationId: first.conversationId,
      senderId: customer.user.id,
      receiverId: agent.user.id,
      kind: "text",
      content: "hello there",
      timestamp: first.createdAt,
      clientMsgId: "first-1",
    };
    const [member] = await members(agent.socket);
    assert.equal(member.id, customer.user.id);
    assert.equal(member.conversationId, first.conversationId);
    assert.equal(member.message_count, 1);
    assert.deepEqual(member.lastMessage, lastMessage);
    const [mine] = await members(customer.socket);
    assert.equal(mine.id, agent.user.id);
    assert.equal(mine.message_count, 0, "my own first message is not unread for me");
    assert.deepEqual(mine.lastMessage, lastMessage);
  });

  test("an agent's members are sorted by latest activity first", async () => {
    const { agent, customer: a } = await pair(ctx.server, transport);
    const { customer: b } = await pair(ctx.server, transport, { agent });
    const { customer: c } = await pair(ctx.server, transport, { agent });
    assert.deepEqual((await members(agent.socket)).map((m) => m.id), [c.user.id, b.user.id, a.user.id], "by their first messages");
    await send(b.socket, { content: "b first" });
    await send(a.socket, { content: "a second" });
    await send(c.socket, { content: "c third" });
    assert.deepEqual((await members(agent.socket)).map((m) => m.id), [c.user.id, a.user.id, b.user.id]);
    await send(agent.socket, { receiverId: b.user.id, content: "the agent answers b" });
    const sorted = await members(agent.socket);
    assert.deepEqual(sorted.map((m) => m.id), [b.user.id, c.user.id, a.user.id]);
    assert.equal(sorted[0].lastMessage.content, "the agent answers b");
  });

  test("all_member lists only the agent's own customers", async () => {
    const { agent, customer } = await pair(ctx.server, transport);
    const { customer: second } = await pair(ctx.server, transport, { agent });
    await pair(ctx.server, transport); // another agent's customer
    await onlineCustomer(ctx.server, transport, { csId: agent.user.id }); // asked for the agent, has not written
    const ids = (await members(agent.socket)).map((m) => m.id).sort();
    assert.deepEqual(ids, [customer.user.id, second.user.id].sort());
  });

  test("read marks messages up to upToId; the peer and my other tabs get messages_read", async () => {
    const { agent, customer, conversationId } = await pair(ctx.server, transport);
    const otherTab = await connect(ctx.server, agent.token, { transport });
    assertOk(await ack(otherTab, "login", { userId: agent.user.id }));
    const sent = [];
    for (let i = 0; i < 3; i++) sent.push(await send(customer.socket, { content: `m${i}` }));

    const reply = assertOk(await ack(agent.socket, "read", { peerId: customer.user.id, upToId: sent[1].id }));
    assert.deepEqual(reply, { ok: true, conversationId, upToId: sent[1].id, seq: sent[1].seq });
    const expected = { readerId: agent.user.id, upToId: sent[1].id, conversationId, seq: sent[1].seq };
    assert.deepEqual(await waitFor(customer.socket, "messages_read"), expected);
    assert.deepEqual(await waitFor(otherTab, "messages_read"), expected);
    await expectNo(agent.socket, "messages_read");

    assert.equal((await members(agent.socket))[0].message_count, 1);

    assertOk(await ack(agent.socket, "read", { peerId: customer.user.id, upToId: sent[2].id }));
    assert.equal((await members(agent.socket))[0].message_count, 0);
  });

  test("history's peerReadSeq tells how far the other side has read", async () => {
    const { agent, customer } = await pair(ctx.server, transport);
    const sent = [];
    for (let i = 0; i < 3; i++) sent.push(await send(customer.socket, { content: `m${i}` }));
    assert.equal(assertOk(await ack(customer.socket, "history", {})).peerReadSeq, 0, "before the agent's first read");
    assertOk(await ack(agent.socket, "read", { peerId: customer.user.id, upToId: sent[1].id }));
    assert.equal(assertOk(await ack(customer.socket, "history", {})).peerReadSeq, sent[1].seq);
    assert.equal(assertOk(await ack(agent.socket, "history", { peerId: customer.user.id })).peerReadSeq, 0, "the customer has read nothing");
  });

  test("read never moves backwards", async () => {
    const { agent, customer } = await pair(ctx.server, transport);
    const first = await send(customer.socket, { content: "one" });
    const second = await send(customer.socket, { content: "two" });
    assertOk(await ack(agent.socket, "read", { peerId: customer.user.id, upToId: second.id }));
    const back = await ack(agent.socket, "read", { peerId: customer.user.id, upToId: first.id });
    assertOk(back, "reading an older message");
    assert.equal((await members(agent.socket))[0].message_count, 0, "reading an older message made messages unread again");
  });

  test("a customer reads its agent's messages", async () => {
    const { agent, customer, conversationId } = await pair(ctx.server, transport);
    const a = await send(agent.socket, { receiverId: customer.user.id, content: "one" });
    await send(agent.socket, { receiverId: customer.user.id, content: "two" });
    assert.equal((await members(customer.socket))[0].message_count, 2);
    const reply = assertOk(await ack(customer.socket, "read", { peerId: agent.user.id, upToId: a.id }));
    assert.equal(reply.conversationId, conversationId);
    assert.deepEqual(await waitFor(agent.socket, "messages_read"), { readerId: customer.user.id, upToId: a.id, conversationId, seq: a.seq });
    assert.equal((await members(customer.socket))[0].message_count, 1);
  });

  test("read of a message that is not in that conversation is not_found", async () => {
    const { agent, customer } = await pair(ctx.server, transport);
    const other = await pair(ctx.server, transport);
    const foreign = await send(other.customer.socket, { content: "elsewhere" });
    assertAckError(await ack(agent.socket, "read", { peerId: customer.user.id, upToId: foreign.id }), "not_found", "foreign message");
    assertAckError(await ack(agent.socket, "read", { peerId: customer.user.id, upToId: "987654321" }), "not_found", "unknown message");
    assertAckError(await ack(agent.socket, "read", { peerId: customer.user.id, upToId: "abc" }), "invalid_payload", "upToId not an id");
    await expectNo(other.agent.socket, "messages_read");
  });

  test("a customer that has not written has nothing to read: not_found, and nobody is told", async () => {
    const { agent, customer: other, first } = await pair(ctx.server, transport);
    const customer = await onlineCustomer(ctx.server, transport, { csId: agent.user.id });
    assertAckError(await ack(customer.socket, "read", { peerId: agent.user.id, upToId: first.id }), "not_found", "read before the first message");
    await expectNo(agent.socket, "messages_read");
    await expectNo(other.socket, "messages_read", { ms: 0 });
    assert.equal((await members(agent.socket))[0].message_count, 1, "the other customer's message is still unread");
  });
});

forEachTransport("typing", (transport) => {
  const ctx = useServer();

  test("a customer's typing reaches its agent as {userId, typing}, and nothing else happens", async () => {
    const { agent, customer } = await pair(ctx.server, transport);
    const { customer: bystander } = await pair(ctx.server, transport, { agent });
    await sleep(300);
    for (const s of [agent.socket, customer.socket, bystander.socket]) s.inbox.clear();

    assert.deepEqual(await ack(customer.socket, "typing", { typing: true }), { ok: true });
    assert.deepEqual(await waitFor(agent.socket, "typing"), { userId: customer.user.id, typing: true });
    assert.deepEqual(await ack(customer.socket, "typing", { receiverId: agent.user.id, typing: false }), { ok: true });
    assert.deepEqual(await waitFor(agent.socket, "typing"), { userId: customer.user.id, typing: false });

    await sleep(300);
    assert.deepEqual(agent.socket.inbox.names(), ["typing", "typing"]);
    assert.deepEqual(customer.socket.inbox.names(), [], "the typer got events back");
    assert.deepEqual(bystander.socket.inbox.names(), [], "another customer of the agent saw the typing");
  });

  test("an agent's typing reaches the customer only", async () => {
    const { agent, customer } = await pair(ctx.server, transport);
    const { customer: bystander } = await pair(ctx.server, transport, { agent });
    await sleep(300);
    for (const s of [agent.socket, customer.socket, bystander.socket]) s.inbox.clear();

    assert.deepEqual(await ack(agent.socket, "typing", { receiverId: customer.user.id, typing: true }), { ok: true });
    assert.deepEqual(await waitFor(customer.socket, "typing"), { userId: agent.user.id, typing: true });
    await sleep(300);
    assert.deepEqual(customer.socket.inbox.names(), ["typing"]);
    assert.deepEqual(bystander.socket.inbox.names(), []);
    assert.deepEqual(agent.socket.inbox.names(), []);
  });

  test("typing is not stored", async () => {
    const { agent, customer, first } = await pair(ctx.server, transport);
    assertOk(await ack(customer.socket, "typing", { typing: true }));
    await waitFor(agent.socket, "typing");
    const history = assertOk(await ack(agent.socket, "history", { peerId: customer.user.id }));
    assert.deepEqual(history.messages.map((m) => m.id), [first.id]);
  });

  test("a customer that has not written types to nobody: ok, and nothing is sent", async () => {
    const { agent, customer: other } = await pair(ctx.server, transport);
    const customer = await onlineCustomer(ctx.server, transport, { csId: agent.user.id });
    await sleep(300);
    for (const s of [agent.socket, other.socket, customer.socket]) s.inbox.clear();

    assert.deepEqual(await ack(customer.socket, "typing", { typing: true }), { ok: true });
    assert.deepEqual(await ack(customer.socket, "typing", { receiverId: agent.user.id, typing: false }), { ok: true }, "to the agent it asked for");
    assertAckError(await ack(customer.socket, "typing", { receiverId: "987654321", typing: true }), "not_found", "to nobody at all");
    await sleep(300);
    assert.deepEqual(agent.socket.inbox.names(), [], "the agent asked for saw typing from someone who has not written");
    assert.deepEqual(other.socket.inbox.names(), []);
    assert.deepEqual(customer.socket.inbox.names(), []);
  });

  test("typing that is not a boolean is invalid_payload", async () => {
    const { agent, customer } = await pair(ctx.server, transport);
    assertAckError(await ack(customer.socket, "typing", { typing: "yes" }), "invalid_payload", "typing: 'yes'");
    assertAckError(await ack(customer.socket, "typing", {}), "invalid_payload", "typing missing");
    await expectNo(agent.socket, "typing");
  });
});
