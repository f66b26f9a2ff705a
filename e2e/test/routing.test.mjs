// login: routing customers to agents, the queue, and who may log in as whom.
// Routing depends on which agents are online, so every test runs its own server.
import assert from "node:assert/strict";
import { createAgent, createVisitor, login } from "../lib/api.mjs";
import { ack, assertAckError, assertOk, connect, expectNo, waitFor } from "../lib/client.mjs";
import { assertId, forEachTransport, onlineAgent, onlineCustomer, send, serverForTest, test } from "../lib/harness.mjs";

forEachTransport("login and routing", (transport) => {
  test("an agent's login acks its own id as csId and queued false", async (t) => {
    const server = await serverForTest(t);
    const agent = await onlineAgent(server, transport);
    assert.equal(agent.login.csId, agent.user.id);
    assert.equal(agent.login.queued, false);
    await waitFor(agent.socket, "Online_user");
  });

  test("a customer without csId goes to the only online agent, not to an offline one", async (t) => {
    const server = await serverForTest(t);
    await createAgent(server); // offline, and created first
    const agent = await onlineAgent(server, transport);
    const customer = await onlineCustomer(server, transport);
    assert.equal(customer.login.ok, true);
    assert.equal(customer.login.csId, agent.user.id);
    assert.equal(customer.login.queued, false);
    assertId(customer.login.conversationId, "conversationId");
    const online = await waitFor(customer.socket, "Online_user");
    assert.deepEqual(online, [agent.user.id]);
  });

  test("with two agents online the one with fewer open conversations gets the new customer", async (t) => {
    const server = await serverForTest(t);
    const a = await onlineAgent(server, transport);
    const b = await onlineAgent(server, transport);
    const route = async (csId) => (await onlineCustomer(server, transport, csId ? { csId } : {})).login.csId;

    assert.equal(await route(b.user.id), b.user.id);
    assert.equal(await route(b.user.id), b.user.id);
    // a: 0 open, b: 2 open
    assert.equal(await route(), a.user.id, "a has 0 open conversations, b has 2");
    assert.equal(await route(), a.user.id, "a has 1 open conversation, b has 2");
    assert.equal(await route(a.user.id), a.user.id);
    // a: 3 open, b: 2 open
    assert.equal(await route(), b.user.id, "a has 3 open conversations, b has 2");
  });

  test("with no agent online the customer is queued; the first agent to log in takes it", async (t) => {
    const server = await serverForTest(t);
    const customer = await onlineCustomer(server, transport);
    assert.equal(customer.login.ok, true);
    assert.equal(customer.login.csId, null);
    assert.equal(customer.login.queued, true);
    assertId(customer.login.conversationId, "conversationId of a queued customer");
    assert.deepEqual(await waitFor(customer.socket, "Online_user"), []);
    assert.deepEqual(assertOk(await ack(customer.socket, "all_member")).users, [], "a queued customer has no members");

    // A queued customer writes without receiverId; the message waits in the conversation.
    const queued = await send(customer.socket, { content: "anyone there?" });
    assert.equal(queued.conversationId, customer.login.conversationId);

    const agent = await createAgent(server, { displayName: "Dana" });
    const agentSocket = await connect(server, agent.token, { transport });
    assertOk(await ack(agentSocket, "login", { userId: agent.user.id }));

    const expected = {
      conversationId: customer.login.conversationId,
      customerId: customer.user.id,
      agentId: agent.user.id,
      agent: { id: agent.user.id, role: "agent", username: agent.user.username, displayName: "Dana" },
    };
    assert.deepEqual(await waitFor(customer.socket, "conversation_assigned"), expected);
    assert.deepEqual(await waitFor(agentSocket, "conversation_assigned"), expected);

    // Written while queued, the message went live to nobody; history shows it with the agent
    // that took the conversation.
    const history = assertOk(await ack(agentSocket, "history", { peerId: customer.user.id }));
    assert.equal(history.conversationId, customer.login.conversationId);
    assert.equal(history.messages.length, 1);
    assert.equal(history.messages[0].id, queued.id);
    assert.equal(history.messages[0].receiverId, agent.user.id);
    assert.equal(history.messages[0].content, "anyone there?");
    assert.deepEqual(agentSocket.inbox.all("new_private_message"), []);

    const members = assertOk(await ack(agentSocket, "all_member")).users;
    assert.equal(members.length, 1);
    assert.equal(members[0].id, customer.user.id);
    assert.equal(members[0].message_count, 1);

    // The customer now writes to its agent, and the agent gets it.
    const reply = await send(customer.socket, { receiverId: agent.user.id, content: "hello Dana" });
    const delivered = await waitFor(agentSocket, "new_private_message", { where: (m) => m.id === reply.id });
    assert.equal(delivered.receiverId, agent.user.id);

    // A later login of the customer reports its agent.
    const again = assertOk(await ack(customer.socket, "login", { userId: customer.user.id }));
    assert.equal(again.csId, agent.user.id);
    assert.equal(again.queued, false);
    assert.equal(again.conversationId, customer.login.conversationId);
  });

  test("a customer routed at login and its agent both get conversation_assigned", async (t) => {
    const server = await serverForTest(t);
    const agent = await onlineAgent(server, transport);
    const customer = await onlineCustomer(server, transport);
    const expected = {
      conversationId: customer.login.conversationId,
      customerId: customer.user.id,
      agentId: agent.user.id,
      agent: { id: agent.user.id, role: "agent", username: agent.user.username, displayName: agent.user.displayName },
    };
    assert.deepEqual(await waitFor(customer.socket, "conversation_assigned"), expected);
    assert.deepEqual(await waitFor(agent.socket, "conversation_assigned"), expected);
  });

  test("an online admin is never routed customers; the queue waits for an agent", async (t) => {
    const server = await serverForTest(t);
    const admin = await login(server, "admin", server.adminPassword);
    const adminSocket = await connect(server, admin.token, { transport });
    assertOk(await ack(adminSocket, "login", { userId: admin.user.id }));
    const customer = await onlineCustomer(server, transport);
    assert.equal(customer.login.csId, null);
    assert.equal(customer.login.queued, true);
    await expectNo(adminSocket, "conversation_assigned");
    assert.deepEqual(assertOk(await ack(adminSocket, "all_member")).users, []);
  });

  test("an agent coming online takes the queued conversations, oldest first", async (t) => {
    const server = await serverForTest(t);
    const first = await onlineCustomer(server, transport);
    const second = await onlineCustomer(server, transport);
    assert.equal(first.login.queued, true);
    assert.equal(second.login.queued, true);
    const agent = await onlineAgent(server, transport);
    const assigned = await agent.socket.inbox.take("conversation_assigned", 2);
    assert.deepEqual(assigned.map((a) => a.customerId), [first.user.id, second.user.id]);
    for (const customer of [first, second]) {
      assert.equal((await waitFor(customer.socket, "conversation_assigned")).agentId, agent.user.id);
      const again = assertOk(await ack(customer.socket, "login", { userId: customer.user.id }));
      assert.equal(again.csId, agent.user.id);
      assert.equal(again.queued, false);
    }
  });

  test("login with csId routes to that agent even when another one is less busy", async (t) => {
    const server = await serverForTest(t);
    await onlineAgent(server, transport);
    const busy = await onlineAgent(server, transport);
    for (let i = 0; i < 2; i++) {
      const customer = await onlineCustomer(server, transport, { csId: busy.user.id });
      assert.equal(customer.login.csId, busy.user.id);
      assert.equal(customer.login.queued, false);
    }
  });

  test("login with csId of an offline agent assigns the conversation to it", async (t) => {
    const server = await serverForTest(t);
    const offline = await createAgent(server);
    const customer = await onlineCustomer(server, transport, { csId: offline.user.id });
    assert.equal(customer.login.csId, offline.user.id);
    assert.equal(customer.login.queued, false);
  });

  test("a conversation that already has an agent keeps it", async (t) => {
    const server = await serverForTest(t);
    const first = await onlineAgent(server, transport);
    const second = await onlineAgent(server, transport);
    const customer = await onlineCustomer(server, transport, { csId: first.user.id });
    customer.socket.disconnect();

    const socket = await connect(server, customer.token, { transport });
    const withOther = assertOk(await ack(socket, "login", { userId: customer.user.id, csId: second.user.id }));
    assert.equal(withOther.csId, first.user.id);
    assert.equal(withOther.conversationId, customer.login.conversationId);
    const without = assertOk(await ack(socket, "login", { userId: customer.user.id }));
    assert.equal(without.csId, first.user.id);
    assert.equal(without.conversationId, customer.login.conversationId);
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
