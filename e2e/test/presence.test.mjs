// Presence (user_online / user_offline / update_member_list / Online_user) and heartbeats.
import assert from "node:assert/strict";
import { createVisitor } from "../lib/api.mjs";
import { ack, assertOk, connect, expectNo, sleep, waitFor, waitForDisconnect } from "../lib/client.mjs";
import { forEachTransport, onlineAgent, onlineCustomer, pair, send, serverForTest, test, useServer } from "../lib/harness.mjs";

const PRESENCE_EVENTS = ["user_online", "user_offline", "update_member_list"];

/** Presence events in `socket`'s inbox that concern `userId`. */
function presenceAbout(socket, userId) {
  return PRESENCE_EVENTS.flatMap((event) =>
    socket.inbox.all(event).filter((p) => p === userId || p?.userId === userId).map((p) => [event, p]),
  );
}

forEachTransport("presence", (transport) => {
  const ctx = useServer();

  test("the agent sees its customer go offline and come back; an unrelated pair sees nothing", async () => {
    const { agent, customer } = await pair(ctx.server, transport);
    const other = await pair(ctx.server, transport);

    customer.socket.disconnect();
    assert.equal(await waitFor(agent.socket, "user_offline", { where: (id) => id === customer.user.id }), customer.user.id);
    assert.deepEqual(
      await waitFor(agent.socket, "update_member_list", { where: (p) => p.userId === customer.user.id && p.online === false }),
      { userId: customer.user.id, online: false },
    );
    const members = assertOk(await ack(agent.socket, "all_member")).users;
    assert.equal(members.find((m) => m.id === customer.user.id).online, false);

    const socket = await connect(ctx.server, customer.token, { transport });
    assertOk(await ack(socket, "login", { userId: customer.user.id }));
    assert.equal(await waitFor(agent.socket, "user_online", { where: (id) => id === customer.user.id }), customer.user.id);
    assert.deepEqual(
      await waitFor(agent.socket, "update_member_list", { where: (p) => p.userId === customer.user.id && p.online === true }),
      { userId: customer.user.id, online: true },
    );
    assert.equal(assertOk(await ack(agent.socket, "all_member")).users.find((m) => m.id === customer.user.id).online, true);

    await sleep(300);
    for (const bystander of [other.agent, other.customer]) {
      assert.deepEqual(presenceAbout(bystander.socket, customer.user.id), [], `${bystander.user.role} of another conversation saw presence`);
    }
  });

  test("customers of the same agent hear nothing of each other", async () => {
    const agent = await onlineAgent(ctx.server, transport);
    const { customer: first } = await pair(ctx.server, transport, { agent });
    const { customer: second } = await pair(ctx.server, transport, { agent });
    first.socket.disconnect();
    await waitFor(agent.socket, "user_offline", { where: (id) => id === first.user.id });
    await sleep(200);
    assert.deepEqual(presenceAbout(second.socket, first.user.id), [], "a fellow customer saw another customer's presence");
  });

  test("user_offline only when the last connection closes", async () => {
    const { agent, customer } = await pair(ctx.server, transport);
    await sleep(200);
    const onlineBefore = agent.socket.inbox.all("user_online").filter((id) => id === customer.user.id).length;
    const secondTab = await connect(ctx.server, customer.token, { transport });
    assertOk(await ack(secondTab, "login", { userId: customer.user.id }));
    await sleep(200);
    assert.equal(
      agent.socket.inbox.all("user_online").filter((id) => id === customer.user.id).length,
      onlineBefore,
      "user_online was sent again for a second connection",
    );

    customer.socket.disconnect();
    await expectNo(agent.socket, "user_offline", { ms: 500, where: (id) => id === customer.user.id });
    secondTab.disconnect();
    await waitFor(agent.socket, "user_offline", { where: (id) => id === customer.user.id });
  });

  test("customers see their agent go offline and online", async () => {
    const { agent, customer } = await pair(ctx.server, transport);
    agent.socket.disconnect();
    assert.equal(await waitFor(customer.socket, "user_offline"), agent.user.id);
    assert.deepEqual(
      await waitFor(customer.socket, "update_member_list", { where: (p) => p.online === false }),
      { userId: agent.user.id, online: false },
    );
    const socket = await connect(ctx.server, agent.token, { transport });
    assertOk(await ack(socket, "login", { userId: agent.user.id }));
    assert.equal(await waitFor(customer.socket, "user_online", { where: (id) => id === agent.user.id }), agent.user.id);
    assert.deepEqual(
      await waitFor(customer.socket, "update_member_list", { where: (p) => p.online === true }),
      { userId: agent.user.id, online: true },
    );
  });

  test("Online_user on login lists the members that are online", async () => {
    const agent = await onlineAgent(ctx.server, transport);
    const { customer: online } = await pair(ctx.server, transport, { agent });
    const { customer: offline } = await pair(ctx.server, transport, { agent });
    // Before its first message a customer has no members, not even the agent it asks for.
    const newcomer = await onlineCustomer(ctx.server, transport, { csId: agent.user.id });
    assert.deepEqual(await waitFor(newcomer.socket, "Online_user"), []);
    offline.socket.disconnect();
    await waitFor(agent.socket, "user_offline", { where: (id) => id === offline.user.id });
    assertOk(await ack(online.socket, "login", { userId: online.user.id }));
    assert.deepEqual(await waitFor(online.socket, "Online_user"), [agent.user.id]);

    const socket = await connect(ctx.server, agent.token, { transport });
    assertOk(await ack(socket, "login", { userId: agent.user.id }));
    assert.deepEqual(await waitFor(socket, "Online_user"), [online.user.id]);
  });

  test("a visitor with no conversation is nobody's member", async () => {
    const { agent } = await pair(ctx.server, transport);
    const visitor = await createVisitor(ctx.server);
    const socket = await connect(ctx.server, visitor.token, { transport });
    await sleep(300);
    socket.disconnect();
    await sleep(300);
    assert.deepEqual(presenceAbout(agent.socket, visitor.user.id), []);
  });

  test("a visitor that logged in asking for an agent but has not written is nobody's member until its first message", async () => {
    const { agent } = await pair(ctx.server, transport);
    const visitor = await onlineCustomer(ctx.server, transport, { csId: agent.user.id });
    const secondTab = await connect(ctx.server, visitor.token, { transport });
    assertOk(await ack(secondTab, "login", { userId: visitor.user.id }));
    secondTab.disconnect();
    await sleep(300);
    assert.deepEqual(presenceAbout(agent.socket, visitor.user.id), [], "the agent saw presence of a visitor that has not written");
    assert.deepEqual(presenceAbout(visitor.socket, agent.user.id), [], "the visitor saw presence of an agent it has no conversation with");

    // Its first message makes them members: each sees the other online.
    await send(visitor.socket, { content: "hello" });
    assert.equal(await waitFor(agent.socket, "user_online", { where: (id) => id === visitor.user.id }), visitor.user.id);
    assert.deepEqual(await waitFor(agent.socket, "update_member_list", { where: (p) => p.userId === visitor.user.id }), { userId: visitor.user.id, online: true });
    assert.equal(await waitFor(visitor.socket, "user_online", { where: (id) => id === agent.user.id }), agent.user.id);
    assert.deepEqual(await waitFor(visitor.socket, "update_member_list", { where: (p) => p.userId === agent.user.id }), { userId: agent.user.id, online: true });
    visitor.socket.disconnect();
    assert.equal(await waitFor(agent.socket, "user_offline", { where: (id) => id === visitor.user.id }), visitor.user.id);
  });
});

forEachTransport("heartbeat", (transport) => {
  test("heartbeat acks ok; silence after a heartbeat disconnects; steady heartbeats or none keep the connection", async (t) => {
    const server = await serverForTest(t, { env: { KEFU_HEARTBEAT_TIMEOUT_MS: "1000" } });
    const { agent, customer } = await pair(server, transport);

    const steady = await connect(server, customer.token, { transport });
    const never = await connect(server, customer.token, { transport });
    const timer = setInterval(() => steady.emit("heartbeat"), 250);
    t.after(() => clearInterval(timer));

    assert.deepEqual(await ack(customer.socket, "heartbeat"), { ok: true });
    const sentAt = Date.now();
    await waitForDisconnect(customer.socket, 4_000);
    const after = Date.now() - sentAt;
    assert.ok(after >= 800, `disconnected ${after} ms after the heartbeat, before the 1000 ms timeout`);

    await sleep(Math.max(0, 2_500 - after));
    assert.equal(steady.connected, true, "a connection sending heartbeats every 250 ms was dropped");
    assert.equal(never.connected, true, "a connection that never sent a heartbeat was dropped");

    clearInterval(timer);
    never.disconnect();
    steady.disconnect();
    assert.equal(await waitFor(agent.socket, "user_offline", { where: (id) => id === customer.user.id }), customer.user.id);
  });
});
