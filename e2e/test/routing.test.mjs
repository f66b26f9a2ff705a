// login and routing: a login writes nothing; a customer's first message starts its conversation
// and routes it (the agent asked for, the least busy one, or the queue); who may log in as whom.
// Routing depends on which agents are online, so every test runs its own server.
import assert from "node:assert/strict";
import { adminToken, createAgent, createVisitor, login, request } from "../lib/api.mjs";
import { ack, assertAckError, assertOk, connect, expectNo, waitFor } from "../lib/client.mjs";
import {
  assertId,
  assertTimestamp,
  firstMessage,
  forEachTransport,
  onlineAgent,
  onlineCustomer,
  pair,
  send,
  serverForTest,
  test,
} from "../lib/harness.mjs";

/** The ack of a customer's login while it has no conversation at all. */
const NOTHING_YET = { ok: true, csId: null, conversationId: null, queued: false, position: null, estimatedWaitSeconds: null, ended: false, requestedAgent: null };
/** A login's ack naming an online agent (`csId`): nothing yet, and that agent is online. */
const ASKED = (agent) => ({ ...NOTHING_YET, requestedAgent: { id: agent.user.id, displayName: agent.user.displayName, online: true, waitsUntil: null } });

/** GET /api/conversations for `customer` (its token): its conversations, newest first. */
async function conversationsOf(server, customer) {
  const res = await request(server, "GET", "/api/conversations", { token: customer.token });
  assert.equal(res.status, 200, res.text);
  return res.body.conversations;
}

/** The agent's entry in GET /api/agents. */
async function agentEntry(server, agent) {
  const res = await request(server, "GET", "/api/agents", { token: await adminToken(server) });
  assert.equal(res.status, 200, res.text);
  return res.body.agents.find((a) => a.id === agent.user.id);
}

/** `conversation_assigned` as documented, for `customer` and `agent` (with its user object). */
function assignedEvent(conversationId, customer, agent) {
  const { id, role, username, displayName } = agent.user;
  return { conversationId, customerId: customer.user.id, agentId: id, agent: { id, role, username, displayName } };
}

forEachTransport("login and routing", (transport) => {
  test("an agent's login acks its own id as csId and queued false", async (t) => {
    const server = await serverForTest(t);
    const agent = await onlineAgent(server, transport);
    assert.equal(agent.login.csId, agent.user.id);
    assert.equal(agent.login.queued, false);
    await waitFor(agent.socket, "Online_user");
  });

  test("a customer's login writes nothing: no conversation, no member, nothing told to the agent it asks for", async (t) => {
    const server = await serverForTest(t);
    const agent = await onlineAgent(server, transport);
    const customer = await onlineCustomer(server, transport, { csId: agent.user.id });
    assert.deepEqual(customer.login, ASKED(agent));
    assert.deepEqual(await waitFor(customer.socket, "Online_user"), []);
    assert.deepEqual(assertOk(await ack(customer.socket, "queue_status")), {
      ok: true,
      queued: false,
      conversationId: null,
      position: null,
      estimatedWaitSeconds: null,
    });
    // A second login, and one without csId, change nothing either.
    assert.deepEqual(assertOk(await ack(customer.socket, "login", { userId: customer.user.id, csId: agent.user.id })), ASKED(agent));
    assert.deepEqual(assertOk(await ack(customer.socket, "login", { userId: customer.user.id })), NOTHING_YET);

    assert.deepEqual(await conversationsOf(server, customer), [], "GET /api/conversations after a login");
    assert.deepEqual(assertOk(await ack(agent.socket, "all_member")).users, [], "the agent's members after the customer's login");
    assert.deepEqual(assertOk(await ack(customer.socket, "all_member")).users, [], "the customer's members after its login");
    assert.equal((await agentEntry(server, agent)).openConversations, 0);
    for (const event of ["conversation_assigned", "user_online", "update_member_list", "new_private_message"]) {
      await expectNo(agent.socket, event, { ms: event === "conversation_assigned" ? 300 : 0 });
      await expectNo(customer.socket, event, { ms: 0 });
    }

    // The first message starts it.
    const first = await send(customer.socket, { content: "hello" });
    const listed = await conversationsOf(server, customer);
    assert.equal(listed.length, 1, JSON.stringify(listed));
    assertTimestamp(listed[0].createdAt, "createdAt");
    assert.deepEqual(listed[0], {
      id: first.conversationId,
      customerId: customer.user.id,
      agentId: agent.user.id,
      status: "open",
      createdAt: listed[0].createdAt,
      resolvedAt: null,
      rating: null,
      offline: false,
      endedAs: null,
    });
    assert.equal((await agentEntry(server, agent)).openConversations, 1);
  });

  test("the first message's ack says where the conversation went and has seq 1; later acks do not; a login then reports it", async (t) => {
    const server = await serverForTest(t);
    const agent = await onlineAgent(server, transport);
    const customer = await onlineCustomer(server, transport);
    const first = await send(customer.socket, { content: "hello", clientMsgId: "first" });
    assertId(first.conversationId, "conversationId");
    assert.equal(first.seq, 1);
    assert.equal(first.duplicate, false);
    assert.deepEqual(first.started, { csId: agent.user.id, queued: false });

    const second = await send(customer.socket, { content: "still me" });
    assert.equal(second.conversationId, first.conversationId);
    assert.equal(second.seq, 2);
    assert.equal(second.started, undefined, "a message in an open conversation started nothing");
    const answer = await send(agent.socket, { receiverId: customer.user.id, content: "hi" });
    assert.equal(answer.started, undefined, "an agent's message started nothing");

    const again = assertOk(await ack(customer.socket, "login", { userId: customer.user.id }));
    assert.deepEqual(again, { ...NOTHING_YET, csId: agent.user.id, conversationId: first.conversationId });
    assert.deepEqual(await waitFor(customer.socket, "Online_user", { where: (ids) => ids.length > 0 }), [agent.user.id]);
  });

  test("a first message without csId goes to the only online agent, not to an offline one", async (t) => {
    const server = await serverForTest(t);
    await createAgent(server); // offline, and created first
    const agent = await onlineAgent(server, transport);
    const customer = await onlineCustomer(server, transport);
    assert.deepEqual(customer.login, NOTHING_YET);
    const first = await firstMessage(customer, agent);
    const history = assertOk(await ack(agent.socket, "history", { peerId: customer.user.id }));
    assert.equal(history.conversationId, first.conversationId);
    assert.deepEqual(history.messages.map((m) => [m.id, m.receiverId]), [[first.id, agent.user.id]]);
  });

  test("with two agents online the one with fewer open conversations gets the new customer", async (t) => {
    const server = await serverForTest(t);
    const a = await onlineAgent(server, transport);
    const b = await onlineAgent(server, transport);
    const route = async (csId) => {
      const customer = await onlineCustomer(server, transport, csId ? { csId } : {});
      return (await send(customer.socket, { content: "hello" })).started.csId;
    };

    assert.equal(await route(b.user.id), b.user.id);
    assert.equal(await route(b.user.id), b.user.id);
    // a: 0 open, b: 2 open
    assert.equal(await route(), a.user.id, "a has 0 open conversations, b has 2");
    assert.equal(await route(), a.user.id, "a has 1 open conversation, b has 2");
    assert.equal(await route(a.user.id), a.user.id);
    // a: 3 open, b: 2 open
    assert.equal(await route(), b.user.id, "a has 3 open conversations, b has 2");
  });

  test("with no agent online the first message is queued; the customer gets queue_position; the first agent to log in takes it", async (t) => {
    const server = await serverForTest(t);
    const customer = await onlineCustomer(server, transport);
    assert.deepEqual(customer.login, NOTHING_YET);
    assert.deepEqual(await waitFor(customer.socket, "Online_user"), []);

    // A customer without an agent writes without receiverId; its message starts the conversation,
    // which waits in the queue, and the message with it.
    const queued = await send(customer.socket, { content: "anyone there?" });
    assertId(queued.conversationId, "conversationId of a queued conversation");
    assert.equal(queued.seq, 1);
    assert.deepEqual(queued.started, { csId: null, queued: true });
    const place = await waitFor(customer.socket, "queue_position", { timeout: 2_500 });
    assert.equal(place.conversationId, queued.conversationId);
    assert.equal(place.position, 1);
    assert.equal(typeof place.estimatedWaitSeconds, "number");
    assert.deepEqual(assertOk(await ack(customer.socket, "all_member")).users, [], "a queued customer has no members");
    const status = assertOk(await ack(customer.socket, "queue_status"));
    assert.deepEqual([status.queued, status.conversationId, status.position], [true, queued.conversationId, 1]);
    const waiting = assertOk(await ack(customer.socket, "login", { userId: customer.user.id }));
    assert.deepEqual(
      [waiting.csId, waiting.conversationId, waiting.queued, waiting.position, waiting.ended],
      [null, queued.conversationId, true, 1, false],
    );
    assert.equal(typeof waiting.estimatedWaitSeconds, "number");

    // A second message while queued joins the same conversation and starts nothing.
    const more = await send(customer.socket, { content: "hello?" });
    assert.equal(more.conversationId, queued.conversationId);
    assert.equal(more.seq, 2);
    assert.equal(more.started, undefined);

    const agent = await createAgent(server, { displayName: "Dana" });
    const agentSocket = await connect(server, agent.token, { transport });
    assertOk(await ack(agentSocket, "login", { userId: agent.user.id }));

    const expected = assignedEvent(queued.conversationId, customer, { user: { ...agent.user, displayName: "Dana" } });
    assert.deepEqual(await waitFor(customer.socket, "conversation_assigned"), expected);
    assert.deepEqual(await waitFor(agentSocket, "conversation_assigned"), expected);

    // Written while queued, the messages went live to nobody; history shows them with the agent
    // that took the conversation.
    const history = assertOk(await ack(agentSocket, "history", { peerId: customer.user.id }));
    assert.equal(history.conversationId, queued.conversationId);
    assert.deepEqual(history.messages.map((m) => m.id), [queued.id, more.id]);
    assert.deepEqual(history.messages.map((m) => m.receiverId), [agent.user.id, agent.user.id]);
    assert.equal(history.messages[0].content, "anyone there?");
    assert.deepEqual(agentSocket.inbox.all("new_private_message"), []);

    const members = assertOk(await ack(agentSocket, "all_member")).users;
    assert.equal(members.length, 1);
    assert.equal(members[0].id, customer.user.id);
    assert.equal(members[0].message_count, 2);

    // The customer now writes to its agent, and the agent gets it.
    const reply = await send(customer.socket, { receiverId: agent.user.id, content: "hello Dana" });
    const delivered = await waitFor(agentSocket, "new_private_message", { where: (m) => m.id === reply.id });
    assert.equal(delivered.receiverId, agent.user.id);

    // A later login of the customer reports its agent.
    const again = assertOk(await ack(customer.socket, "login", { userId: customer.user.id }));
    assert.equal(again.csId, agent.user.id);
    assert.equal(again.queued, false);
    assert.equal(again.conversationId, queued.conversationId);
  });

  test("a first message and its agent both get conversation_assigned, before the ack; a login alone gets none", async (t) => {
    const server = await serverForTest(t);
    const agent = await onlineAgent(server, transport);
    const customer = await onlineCustomer(server, transport);
    await expectNo(customer.socket, "conversation_assigned");
    await expectNo(agent.socket, "conversation_assigned", { ms: 0 });

    const first = await send(customer.socket, { content: "hello" });
    const expected = assignedEvent(first.conversationId, customer, agent);
    assert.deepEqual(
      customer.socket.inbox.all("conversation_assigned"),
      [expected],
      "the conversation is announced to its customer before the ack of the message that started it",
    );
    assert.deepEqual(await waitFor(customer.socket, "conversation_assigned"), expected);
    assert.deepEqual(await waitFor(agent.socket, "conversation_assigned"), expected);
    // The agent sees its new customer online, and the customer its agent.
    assert.equal(await waitFor(agent.socket, "user_online"), customer.user.id);
    assert.equal(await waitFor(customer.socket, "user_online"), agent.user.id);
    // And the agent gets the message, to the agent it went to.
    const message = await waitFor(agent.socket, "new_private_message");
    assert.deepEqual([message.id, message.seq, message.receiverId], [first.id, 1, agent.user.id]);
  });

  test("an online admin is never routed customers; the queue waits for an agent", async (t) => {
    const server = await serverForTest(t);
    const admin = await login(server, "admin", server.adminPassword);
    const adminSocket = await connect(server, admin.token, { transport });
    assertOk(await ack(adminSocket, "login", { userId: admin.user.id }));
    const customer = await onlineCustomer(server, transport);
    assert.deepEqual(customer.login, NOTHING_YET);
    const first = await send(customer.socket, { content: "hello" });
    assert.deepEqual(first.started, { csId: null, queued: true });
    await waitFor(customer.socket, "queue_position", { timeout: 2_500 });
    await expectNo(adminSocket, "conversation_assigned");
    await expectNo(adminSocket, "new_private_message", { ms: 0 });
    assert.deepEqual(assertOk(await ack(adminSocket, "all_member")).users, []);
  });

  test("an agent coming online takes the queued conversations, oldest first", async (t) => {
    const server = await serverForTest(t);
    const first = await onlineCustomer(server, transport);
    const second = await onlineCustomer(server, transport);
    const idle = await onlineCustomer(server, transport); // logged in, never writes
    const conversations = [];
    for (const customer of [first, second]) {
      const reply = await send(customer.socket, { content: "waiting" });
      assert.deepEqual(reply.started, { csId: null, queued: true });
      conversations.push(reply.conversationId);
    }
    assert.equal((await waitFor(second.socket, "queue_position", { timeout: 2_500, where: (p) => p.position === 2 })).conversationId, conversations[1]);

    // The agent's login does not wait for the queue: the assignments follow it.
    const agent = await onlineAgent(server, transport);
    const assigned = await agent.socket.inbox.take("conversation_assigned", 2);
    assert.deepEqual(assigned.map((a) => [a.customerId, a.conversationId]), [[first.user.id, conversations[0]], [second.user.id, conversations[1]]]);
    for (const customer of [first, second]) {
      assert.equal((await waitFor(customer.socket, "conversation_assigned")).agentId, agent.user.id);
      const again = assertOk(await ack(customer.socket, "login", { userId: customer.user.id }));
      assert.equal(again.csId, agent.user.id);
      assert.equal(again.queued, false);
    }
    await expectNo(agent.socket, "conversation_assigned", { where: (a) => a.customerId === idle.user.id });
    assert.deepEqual(assertOk(await ack(idle.socket, "login", { userId: idle.user.id })), NOTHING_YET, "a customer that never wrote was queued");
    assert.deepEqual(assertOk(await ack(agent.socket, "all_member")).users.map((m) => m.id).sort(), [first.user.id, second.user.id].sort());
  });

  test("csId at login routes the first message to that agent even when another one is less busy", async (t) => {
    const server = await serverForTest(t);
    const idle = await onlineAgent(server, transport);
    const busy = await onlineAgent(server, transport);
    for (let i = 0; i < 2; i++) {
      const customer = await onlineCustomer(server, transport, { csId: busy.user.id });
      assert.deepEqual(customer.login, ASKED(busy), "csId at login assigns nothing yet");
      await firstMessage(customer, busy);
    }
    await expectNo(idle.socket, "conversation_assigned");
  });

  test("receiverId of the first message names the agent asked for", async (t) => {
    const server = await serverForTest(t);
    const idle = await onlineAgent(server, transport);
    const { agent: busy } = await pair(server, transport);
    const customer = await onlineCustomer(server, transport);
    const first = await firstMessage(customer, busy, { receiverId: busy.user.id, content: "for you" });
    const history = assertOk(await ack(busy.socket, "history", { peerId: customer.user.id }));
    assert.deepEqual(history.messages.map((m) => [m.id, m.receiverId, m.content]), [[first.id, busy.user.id, "for you"]]);
    await expectNo(idle.socket, "conversation_assigned");
  });

  test("csId of an agent that cannot take the conversation: offline, it is waited for a while; away or full, the best available agent", async (t) => {
    const server = await serverForTest(t);
    const startWith = async (csId) => {
      const customer = await onlineCustomer(server, transport, { csId });
      assert.deepEqual({ ...customer.login, requestedAgent: null }, NOTHING_YET);
      assert.equal(customer.login.requestedAgent.id, csId);
      return { customer, login: customer.login, first: await send(customer.socket, { content: "hello" }) };
    };

    // Offline, with nobody else online: the queue.
    const offline = await createAgent(server);
    const queued = await startWith(offline.user.id);
    assert.deepEqual(queued.first.started, { csId: null, queued: true });
    await waitFor(queued.customer.socket, "queue_position", { timeout: 2_500 });

    // Offline, with another agent online: the customer is told, and waits for the agent it asked
    // for (KEFU_REQUESTED_AGENT_WAIT, 120 s by default) before anyone else takes it.
    const other = await onlineAgent(server, transport);
    const waiting = await startWith(offline.user.id);
    assert.equal(waiting.login.requestedAgent.online, false);
    assert.ok(waiting.login.requestedAgent.waitsUntil > Date.now(), JSON.stringify(waiting.login));
    assert.deepEqual(waiting.first.started, { csId: null, queued: true });

    // Away.
    const away = await onlineAgent(server, transport);
    assert.deepEqual(assertOk(await ack(away.socket, "set_status", { status: "away" })), { ok: true, status: "away" });
    assert.deepEqual((await startWith(away.user.id)).first.started, { csId: other.user.id, queued: false });

    // At its capacity.
    const full = await onlineAgent(server, transport);
    const capped = await request(server, "PATCH", `/api/agents/${full.user.id}`, { token: await adminToken(server), body: { capacity: 1 } });
    assert.equal(capped.status, 200, capped.text);
    assert.deepEqual((await startWith(full.user.id)).first.started, { csId: full.user.id, queued: false }, "the first one fits");
    assert.deepEqual((await startWith(full.user.id)).first.started, { csId: other.user.id, queued: false }, "the second one does not");

    for (const agent of [away, full]) {
      const entry = await agentEntry(server, agent);
      assert.equal(entry.openConversations, agent === full ? 1 : 0, `${agent === full ? "full" : "away"} agent's open conversations`);
    }
  });

  test("a conversation that already has an agent keeps it, whatever a later login asks for", async (t) => {
    const server = await serverForTest(t);
    const first = await onlineAgent(server, transport);
    const second = await onlineAgent(server, transport);
    const { customer, conversationId } = await pair(server, transport, { agent: first });
    customer.socket.disconnect();

    const socket = await connect(server, customer.token, { transport });
    const withOther = assertOk(await ack(socket, "login", { userId: customer.user.id, csId: second.user.id }));
    assert.equal(withOther.csId, first.user.id);
    assert.equal(withOther.conversationId, conversationId);
    const without = assertOk(await ack(socket, "login", { userId: customer.user.id }));
    assert.equal(without.csId, first.user.id);
    assert.equal(without.conversationId, conversationId);

    // The next message goes on in the same conversation, to the same agent.
    const next = await send(socket, { content: "me again" });
    assert.equal(next.conversationId, conversationId);
    assert.equal(next.started, undefined);
    assert.equal((await waitFor(first.socket, "new_private_message")).id, next.id);
    await expectNo(second.socket, "conversation_assigned", { ms: 0 });
    await expectNo(second.socket, "new_private_message", { ms: 0 });
  });

  test("a retry of the first message with its clientMsgId starts nothing more", async (t) => {
    const server = await serverForTest(t);
    const agent = await onlineAgent(server, transport);
    const customer = await onlineCustomer(server, transport);
    const first = await firstMessage(customer, agent, { content: "hello", clientMsgId: "first-try" });
    const retry = await send(customer.socket, { content: "hello", clientMsgId: "first-try" });
    assert.equal(retry.duplicate, true);
    assert.deepEqual([retry.id, retry.seq, retry.conversationId], [first.id, 1, first.conversationId]);
    await expectNo(agent.socket, "conversation_assigned");
    await expectNo(agent.socket, "new_private_message", { ms: 0 });
    assert.equal((await conversationsOf(server, customer)).length, 1);
    assert.equal((await agentEntry(server, agent)).openConversations, 1);
  });

  test("first messages sent at once, from one tab and from two, start one conversation, announced once", async (t) => {
    const server = await serverForTest(t, { env: { KEFU_MESSAGE_RATE_LIMIT: "0" } });
    const agent = await onlineAgent(server, transport);
    // Whether messages sent together are stored together is up to the server: try a few times.
    for (let round = 0; round < 12; round++) {
      const what = `round ${round}`;
      const customer = await onlineCustomer(server, transport);
      const otherTab = await connect(server, customer.token, { transport });
      assertOk(await ack(otherTab, "login", { userId: customer.user.id }));
      const replies = await Promise.all([
        ...[0, 1, 2].map((i) => ack(customer.socket, "private_message", { content: `tab one ${i}` })),
        ...[0, 1].map((i) => ack(otherTab, "private_message", { content: `tab two ${i}` })),
      ]);
      replies.forEach((r) => assertOk(r, `${what}: a first message from one of two tabs`));
      const { conversationId } = replies[0];
      assert.deepEqual(replies.map((r) => r.conversationId), replies.map(() => conversationId), `${what}: more than one conversation was started`);
      assert.deepEqual(replies.map((r) => r.seq).sort(), [1, 2, 3, 4, 5], what);
      const started = replies.filter((r) => r.started !== undefined);
      assert.deepEqual(
        started.map((r) => [r.seq, r.started]),
        [[1, { csId: agent.user.id, queued: false }]],
        `${what}: exactly one ack, that of seq 1, says it started the conversation`,
      );

      const delivered = await agent.socket.inbox.take("new_private_message", 5);
      assert.deepEqual(delivered.map((m) => m.seq), [1, 2, 3, 4, 5], what);
      await waitFor(customer.socket, "conversation_assigned");
      await waitFor(otherTab, "conversation_assigned");
      await expectNo(agent.socket, "conversation_assigned", { where: (a) => a.conversationId !== conversationId });
      const told = (socket, event, where = () => true) => socket.inbox.all(event).filter(where).length;
      assert.deepEqual(
        {
          assignedToAgent: told(agent.socket, "conversation_assigned", (a) => a.conversationId === conversationId),
          assignedToTabOne: told(customer.socket, "conversation_assigned"),
          assignedToTabTwo: told(otherTab, "conversation_assigned"),
          customerOnlineToAgent: told(agent.socket, "user_online", (id) => id === customer.user.id),
        },
        { assignedToAgent: 1, assignedToTabOne: 1, assignedToTabTwo: 1, customerOnlineToAgent: 1 },
        `${what}: the conversation was announced more than once`,
      );
      assert.equal((await conversationsOf(server, customer)).length, 1, what);
      assert.equal((await agentEntry(server, agent)).openConversations, 1, what);
      assertOk(await ack(agent.socket, "resolve", { peerId: customer.user.id }));
      agent.socket.inbox.clear();
    }

    // The agent's room was counted right all along: now without a conversation, it takes five
    // (its capacity) new customers asking for it.
    for (let i = 0; i < 5; i++) {
      const customer = await onlineCustomer(server, transport, { csId: agent.user.id });
      const first = await send(customer.socket, { content: "hello" });
      assert.deepEqual(first.started, { csId: agent.user.id, queued: false }, `customer ${i + 1} of 5 asking for an agent with room`);
    }
  });

  test("after resolve the next message starts a new conversation, seq 1; the old one stays readable", async (t) => {
    const server = await serverForTest(t);
    const agent = await onlineAgent(server, transport);
    const { customer, conversationId: old, first } = await pair(server, transport, { agent });
    const answer = await send(agent.socket, { receiverId: customer.user.id, content: "done?" });

    assert.deepEqual(assertOk(await ack(agent.socket, "resolve", { peerId: customer.user.id })), { ok: true, conversationId: old });
    const resolved = { conversationId: old, customerId: customer.user.id, agentId: agent.user.id };
    assert.deepEqual(await waitFor(customer.socket, "conversation_resolved"), resolved);
    assert.deepEqual(await waitFor(agent.socket, "conversation_resolved"), resolved);

    const ended = assertOk(await ack(customer.socket, "login", { userId: customer.user.id }));
    assert.deepEqual([ended.ended, ended.conversationId, ended.queued], [true, old, false]);
    assert.deepEqual(assertOk(await ack(agent.socket, "all_member")).users, [], "a resolved conversation is no member");
    assert.deepEqual(assertOk(await ack(customer.socket, "typing", { typing: true })), { ok: true });
    await expectNo(agent.socket, "typing");

    // The next message starts a new conversation, routed like the first.
    const next = await send(customer.socket, { content: "one more thing" });
    assertId(next.conversationId, "the new conversationId");
    assert.notEqual(next.conversationId, old);
    assert.equal(next.seq, 1);
    assert.deepEqual(next.started, { csId: agent.user.id, queued: false });
    const expected = assignedEvent(next.conversationId, customer, agent);
    assert.deepEqual(await waitFor(customer.socket, "conversation_assigned"), expected);
    assert.deepEqual(await waitFor(agent.socket, "conversation_assigned"), expected);
    assert.equal((await waitFor(agent.socket, "new_private_message")).id, next.id);

    const again = assertOk(await ack(customer.socket, "login", { userId: customer.user.id }));
    assert.deepEqual([again.csId, again.conversationId, again.ended], [agent.user.id, next.conversationId, false]);
    const current = assertOk(await ack(customer.socket, "history", {}));
    assert.equal(current.conversationId, next.conversationId);
    assert.deepEqual(current.messages.map((m) => m.id), [next.id]);
    const earlier = assertOk(await ack(customer.socket, "history", { conversationId: old }));
    assert.deepEqual(earlier.messages.map((m) => m.id), [first.id, answer.id]);
    const listed = await conversationsOf(server, customer);
    assert.deepEqual(listed.map((c) => [c.id, c.status]), [[next.conversationId, "open"], [old, "resolved"]]);
    assertTimestamp(listed[1].resolvedAt, "resolvedAt");
  });

  test("login with a csId that is not an agent is not_found", async (t) => {
    const server = await serverForTest(t);
    await onlineAgent(server, transport);
    const other = await createVisitor(server);
    const visitor = await createVisitor(server);
    const socket = await connect(server, visitor.token, { transport });
    assertAckError(await ack(socket, "login", { userId: visitor.user.id, csId: other.user.id }), "not_found", "csId of a customer");
    assertAckError(await ack(socket, "login", { userId: visitor.user.id, csId: "987654321" }), "not_found", "unknown csId");
  });

  test("login with csId that is not an id is invalid_payload", async (t) => {
    const server = await serverForTest(t);
    const visitor = await createVisitor(server);
    const socket = await connect(server, visitor.token, { transport });
    assertAckError(await ack(socket, "login", { userId: visitor.user.id, csId: "abc" }), "invalid_payload");
  });

  test("login with another user's userId is forbidden, for customers and agents", async (t) => {
    const server = await serverForTest(t);
    const agent = await createAgent(server);
    const visitor = await createVisitor(server);
    const customerSocket = await connect(server, visitor.token, { transport });
    assertAckError(await ack(customerSocket, "login", { userId: agent.user.id }), "forbidden", "customer as agent");
    const agentSocket = await connect(server, agent.token, { transport });
    assertAckError(await ack(agentSocket, "login", { userId: visitor.user.id }), "forbidden", "agent as customer");
    // The refused login routed nobody: the customer is still without conversation.
    const history = assertOk(await ack(customerSocket, "history", {}));
    assert.equal(history.conversationId, null);
    assert.deepEqual(history.messages, []);
  });
});
