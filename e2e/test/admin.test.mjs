// Admin routes: the agent list with presence and load, disabling accounts, the node view.
import assert from "node:assert/strict";
import { hostname } from "node:os";
import { adminToken, assertHttpError, createAgent, createVisitor, login, request } from "../lib/api.mjs";
import { connect, connectError, waitForDisconnect } from "../lib/client.mjs";
import { assertTimestamp, forEachTransport, onlineAgent, onlineCustomer, pair, serverForTest, test } from "../lib/harness.mjs";

forEachTransport("admin routes", (transport) => {
  /**
   * An agent online with two tabs and one customer (who wrote), a customer online who asked for
   * it but has not written (it counts for nothing), an offline agent, and the admin.
   */
  async function staffed(server) {
    const busy = await onlineAgent(server, transport, await createAgent(server, { displayName: "Busy" }));
    const secondTab = await connect(server, busy.token, { transport });
    const { customer } = await pair(server, transport, { agent: busy });
    await onlineCustomer(server, transport, { csId: busy.user.id });
    const idle = await createAgent(server, { displayName: "Idle" });
    const admin = await login(server, "admin", server.adminPassword);
    return { busy, secondTab, customer, idle, admin };
  }

  test("GET /api/agents lists every agent and admin with presence and load", async (t) => {
    const server = await serverForTest(t);
    const { busy, idle, admin } = await staffed(server);
    const res = await request(server, "GET", "/api/agents", { token: await adminToken(server) });
    assert.equal(res.status, 200, res.text);
    const byId = new Map(res.body.agents.map((a) => [a.id, a]));
    assert.equal(byId.size, 3, `expected the admin and two agents, got ${res.text}`);
    assert.deepEqual(byId.get(busy.user.id), {
      ...busy.user,
      disabled: false,
      online: true,
      connections: 2,
      openConversations: 1,
      capacity: 5,
      status: "available",
    });
    assert.deepEqual(byId.get(idle.user.id), {
      ...idle.user,
      disabled: false,
      online: false,
      connections: 0,
      openConversations: 0,
      capacity: 5,
      status: "available",
    });
    assert.equal(byId.get(admin.user.id).role, "admin");
  });

  test("GET /api/agents is for admins only", async (t) => {
    const server = await serverForTest(t);
    const agent = await createAgent(server);
    assertHttpError(await request(server, "GET", "/api/agents"), 401, "unauthorized");
    assertHttpError(await request(server, "GET", "/api/agents", { token: agent.token }), 403, "forbidden");
  });

  test("GET /api/admin/nodes describes this node", async (t) => {
    const server = await serverForTest(t);
    await staffed(server);
    const res = await request(server, "GET", "/api/admin/nodes", { token: await adminToken(server) });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.nodes.length, 1);
    const [node] = res.body.nodes;
    assert.equal(node.id, `${hostname()}-${server.child.pid}`);
    assertTimestamp(node.startedAt, "startedAt");
    assert.deepEqual(
      { connections: node.connections, onlineUsers: node.onlineUsers, onlineAgents: node.onlineAgents, openConversations: node.openConversations },
      { connections: 4, onlineUsers: 3, onlineAgents: 1, openConversations: 1 },
    );
    const agent = await createAgent(server);
    assertHttpError(await request(server, "GET", "/api/admin/nodes", { token: agent.token }), 403, "forbidden");
  });

  test("KEFU_NODE_ID names the node", async (t) => {
    const server = await serverForTest(t, { env: { KEFU_NODE_ID: "e2e-node-1" } });
    const res = await request(server, "GET", "/api/admin/nodes", { token: await adminToken(server) });
    assert.equal(res.status, 200, res.text);
    assert.equal(res.body.nodes[0].id, "e2e-node-1");
  });

  test("disabling an agent closes its connections, stops its tokens and its password; enabling lets it back", async (t) => {
    const server = await serverForTest(t);
    const agent = await onlineAgent(server, transport);
    const token = await adminToken(server);

    const off = await request(server, "PATCH", `/api/agents/${agent.user.id}`, { token, body: { disabled: true } });
    assert.equal(off.status, 200, off.text);
    assert.deepEqual(off.body, { user: agent.user, disabled: true, capacity: 5 });
    assert.equal(await waitForDisconnect(agent.socket, 3_000), "io server disconnect");

    const refused = await connectError(server, agent.token, { transport });
    assert.equal(refused.message, "unauthorized");
    assertHttpError(await request(server, "GET", "/api/me", { token: agent.token }), 401, "unauthorized");
    assertHttpError(
      await request(server, "POST", "/api/login", { body: { username: agent.username, password: agent.password } }),
      401,
      "unauthorized",
    );
    const listed = (await request(server, "GET", "/api/agents", { token })).body.agents.find((a) => a.id === agent.user.id);
    assert.equal(listed.disabled, true);
    assert.equal(listed.online, false);

    const on = await request(server, "PATCH", `/api/agents/${agent.user.id}`, { token, body: { disabled: false } });
    assert.equal(on.status, 200, on.text);
    assert.equal(on.body.disabled, false);
    const again = await login(server, agent.username, agent.password);
    const socket = await connect(server, again.token, { transport });
    assert.equal(socket.connected, true);
  });

  test("PATCH /api/agents/{id} refuses non-admins, self-disabling, unknown ids and bad bodies", async (t) => {
    const server = await serverForTest(t);
    const token = await adminToken(server);
    const agent = await createAgent(server);
    const other = await createAgent(server);
    const visitor = await createVisitor(server);
    const admin = await login(server, "admin", server.adminPassword);
    const patch = (id, body, as = token) => request(server, "PATCH", `/api/agents/${id}`, { token: as, body });

    assertHttpError(await request(server, "PATCH", `/api/agents/${other.user.id}`, { body: { disabled: true } }), 401, "unauthorized");
    assertHttpError(await patch(other.user.id, { disabled: true }, agent.token), 403, "forbidden");
    assertHttpError(await patch(admin.user.id, { disabled: true }), 403, "forbidden");
    assertHttpError(await patch(visitor.user.id, { disabled: true }), 404, "not_found");
    assertHttpError(await patch("987654321", { disabled: true }), 404, "not_found");
    assertHttpError(await patch("abc", { disabled: true }), 400, "invalid_payload");
    assertHttpError(await patch(other.user.id, { disabled: "yes" }), 400, "invalid_payload");
    assertHttpError(await patch(other.user.id, {}), 400, "invalid_payload");
    assertHttpError(await patch(other.user.id, { capacity: 0 }), 400, "invalid_payload");
    assertHttpError(await patch(other.user.id, { capacity: 2.5 }), 400, "invalid_payload");
    assertHttpError(await patch(other.user.id, { capacity: 10_001 }), 400, "invalid_payload");
    assertHttpError(await patch(other.user.id, { capacity: 3, color: "red" }), 400, "invalid_payload");
    // None of these changed anything.
    await login(server, other.username, other.password);
    await login(server, "admin", server.adminPassword);
  });
});
