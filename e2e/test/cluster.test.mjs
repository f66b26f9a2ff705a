// Cluster mode: three kefu nodes on one database and one Redis, behind nginx configured from
// deploy/nginx/kefu.conf. Clients come from different loopback addresses, so nginx's
// `hash $remote_addr consistent` spreads them over the nodes as it spreads real visitors; each
// test knows which node each client is on and checks that everything a user relies on crosses
// nodes: routing and the queue, acks, messages, typing, read receipts, presence, several tabs, and
// what happens when a node or Redis goes away.
import assert from "node:assert/strict";
import { after, afterEach, before, describe } from "node:test";
import { createAgent, createVisitor, login, request } from "../lib/api.mjs";
import { ack, assertOk, closeAllSockets, expectNo, sleep, waitFor, waitForDisconnect } from "../lib/client.mjs";
import { startCluster } from "../lib/cluster.mjs";
import { TRANSPORTS, send, test } from "../lib/harness.mjs";
import { DB_KIND } from "../lib/server.mjs";

const SKIP = DB_KIND === "sqlite" && "cluster mode needs a server database that every node shares: run with KEFU_E2E_DB=mysql or postgres";

/** The message object a receiver gets for `reply` (a private_message ack). */
function messageOf(reply, { senderId, receiverId, content, clientMsgId = null }) {
  return {
    id: reply.id,
    seq: reply.seq,
    conversationId: reply.conversationId,
    senderId,
    receiverId,
    kind: "text",
    content,
    timestamp: reply.createdAt,
    clientMsgId,
  };
}

/** The ack of a customer's login while it has no conversation: a login writes nothing. */
const NOTHING_YET = { ok: true, csId: null, conversationId: null, queued: false, position: null, estimatedWaitSeconds: null, ended: false, requestedAgent: null };

/** Resolves once `socket` connects again (socket.io-client's own reconnection). */
function reconnected(socket, timeout = 20_000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no reconnect within ${timeout} ms`)), timeout);
    socket.once("connect", () => {
      clearTimeout(timer);
      resolve();
    });
  });
}

/** Polls GET `path` on `server` until `accept(response)`; fails after `timeout` ms with the last answer. */
async function eventually(server, path, accept, what, timeout = 30_000) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    last = await request(server, "GET", path, { timeout: 10_000 }).catch((err) => ({ status: "error", text: err.message }));
    if (accept(last)) return last;
    assert.ok(Date.now() < deadline, `${what}: after ${timeout} ms ${path} still answers ${last.status} ${last.text}`);
    await sleep(250);
  }
}

/** Writes which node each client landed on into the test's output. */
function logPlacement(t, clients) {
  for (const [who, socket] of Object.entries(clients)) t.diagnostic(`${who}: ${socket.address} -> ${socket.node}`);
}

for (const transport of TRANSPORTS) {
  describe(`cluster of three nodes behind nginx [${transport}]`, () => {
    let cluster;
    /** node id → client endpoints (addresses nginx sends to that node) */
    let spots;
    /** One endpoint per node: A, B, C. */
    let A, B, C;
    const used = new Set();

    before(async () => {
      if (SKIP) return;
      cluster = await startCluster({ env: { KEFU_MESSAGE_RATE_LIMIT: "0" } });
      spots = await cluster.spread();
      [A, B, C] = cluster.nodes.map((node) => spots.get(node.nodeId)[0]);
    });
    afterEach(closeAllSockets);
    after(async () => {
      closeAllSockets();
      await cluster?.close();
    });

    /** A socket from `endpoint` over this block's transport. */
    const connectFrom = (endpoint, token, options = {}) => {
      used.add(endpoint.address);
      return cluster.connect(endpoint, token, { transport, ...options });
    };

    test("nginx spreads client addresses over all three nodes; every node is ready; a token works on every node", async (t) => {
      if (SKIP) return t.skip(SKIP);
      for (const [address, node] of cluster.placement) t.diagnostic(`${address} -> ${node}`);
      assert.equal(new Set([A.node, B.node, C.node]).size, 3, "three client addresses on three distinct nodes");

      for (const node of cluster.nodes) {
        const ready = await request(node, "GET", "/readyz");
        assert.equal(ready.status, 200, `${node.nodeId} /readyz: ${ready.text}`);
        assert.deepEqual(ready.body, { status: "ready" });
      }
      const health = await request(A, "GET", "/healthz");
      assert.equal(health.status, 200, "/healthz through nginx");

      // Nodes announce themselves through Redis on a timer: give them a few seconds.
      const { ms } = await cluster.expectLiveNodes(A, 5_000);
      t.diagnostic(`GET /api/admin/nodes listed all three nodes ${ms} ms after the last one started`);

      // A token issued by one node is accepted by the others (shared KEFU_JWT_SECRET).
      const admin = await login(A, "admin", cluster.adminPassword);
      for (const endpoint of [A, B, C]) {
        const me = await request(endpoint, "GET", "/api/me", { token: admin.token });
        assert.equal(me.status, 200, `a token from ${A.node} on ${endpoint.node}: ${me.text}`);
        assert.deepEqual(me.body.user, admin.user);
      }
    });

    test("a queued visitor on one node is assigned when an agent logs in on another; routing sees agents on every node", async (t) => {
      if (SKIP) return t.skip(SKIP);
      const visitor = await createVisitor(A);
      const customer = await connectFrom(A, visitor.token);
      assert.deepEqual(assertOk(await ack(customer, "login", { userId: visitor.user.id }), "visitor login with no agent online"), NOTHING_YET);
      const queued = await send(customer, { content: "anyone?" });
      assert.deepEqual(queued.started, { csId: null, queued: true }, "no agent is online anywhere: the first message waits in the queue");
      const place = await waitFor(customer, "queue_position", { timeout: 2_500 });
      assert.deepEqual([place.conversationId, place.position], [queued.conversationId, 1]);

      const agent = await createAgent(C, { displayName: "Nodewise" });
      const agentSocket = await connectFrom(B, agent.token);
      assertOk(await ack(agentSocket, "login", { userId: agent.user.id }), "agent login");
      logPlacement(t, { visitor: customer, agent: agentSocket });

      const expected = {
        conversationId: queued.conversationId,
        customerId: visitor.user.id,
        agentId: agent.user.id,
        agent: { id: agent.user.id, role: "agent", username: agent.user.username, displayName: "Nodewise" },
      };
      assert.deepEqual(await waitFor(customer, "conversation_assigned"), expected, `visitor on ${A.node}`);
      assert.deepEqual(await waitFor(agentSocket, "conversation_assigned"), expected, `agent on ${B.node}`);

      // The message written while queued is the agent's to read, wherever it was written.
      const history = assertOk(await ack(agentSocket, "history", { peerId: visitor.user.id }), "the agent's history");
      assert.deepEqual(history.messages.map((m) => [m.id, m.receiverId]), [[queued.id, agent.user.id]]);

      // A new visitor on a third node, no csId: its first message goes to the only online agent, on another node.
      const second = await createVisitor(C);
      const secondSocket = await connectFrom(C, second.token);
      assert.deepEqual(assertOk(await ack(secondSocket, "login", { userId: second.user.id }), "second visitor login"), NOTHING_YET);
      assert.deepEqual(await waitFor(secondSocket, "Online_user"), []);
      const routed = await send(secondSocket, { content: "hello" });
      assert.deepEqual(routed.started, { csId: agent.user.id, queued: false }, `the agent online on ${B.node} was not seen from ${C.node}`);
      assert.equal(await waitFor(secondSocket, "user_online"), agent.user.id);
      assert.equal((await waitFor(agentSocket, "conversation_assigned", { where: (p) => p.customerId === second.user.id })).conversationId, routed.conversationId);
      assert.equal(await waitFor(agentSocket, "user_online", { where: (id) => id === second.user.id }), second.user.id);
      assert.equal((await waitFor(agentSocket, "new_private_message", { where: (m) => m.senderId === second.user.id })).id, routed.id);
    });

    test("a visitor and an agent on different nodes chat both ways; the agent's second tab on a third node gets everything", async (t) => {
      if (SKIP) return t.skip(SKIP);
      // REST calls go through other nodes than the sockets: tokens cross nodes too.
      const agent = await createAgent(C);
      const tab1 = await connectFrom(B, agent.token);
      assertOk(await ack(tab1, "login", { userId: agent.user.id }), "agent login, tab 1");

      const visitor = await createVisitor(B);
      const customer = await connectFrom(A, visitor.token);
      const login = assertOk(await ack(customer, "login", { userId: visitor.user.id, csId: agent.user.id }), "visitor login");
      assert.deepEqual(
        login,
        { ...NOTHING_YET, requestedAgent: { id: agent.user.id, displayName: agent.user.displayName, online: true, waitsUntil: null } },
        "a login, even naming an agent on another node, writes nothing",
      );
      assert.deepEqual(await waitFor(customer, "Online_user"), []);

      const tab2 = await connectFrom(C, agent.token);
      assertOk(await ack(tab2, "login", { userId: agent.user.id }), "agent login, tab 2");
      assert.deepEqual(await waitFor(tab2, "Online_user"), [], `tab 2 on ${C.node}: a visitor that has not written is no member`);

      logPlacement(t, { visitor: customer, "agent tab 1": tab1, "agent tab 2": tab2 });
      const nodes = await cluster.expectConnections(A, { [A.node]: 1, [B.node]: 1, [C.node]: 1 });
      for (const n of nodes) t.diagnostic(`GET /api/admin/nodes: ${JSON.stringify(n)}`);

      // Visitor (A) → agent (B, C): the first message starts the conversation, with the agent asked for at login.
      const hello = await send(customer, { receiverId: agent.user.id, content: "hello from the visitor", clientMsgId: "cluster-1" });
      assert.deepEqual(hello.started, { csId: agent.user.id, queued: false });
      assert.equal(hello.seq, 1);
      assert.equal(hello.duplicate, false);
      const { conversationId } = hello;
      const helloMessage = messageOf(hello, { senderId: visitor.user.id, receiverId: agent.user.id, content: "hello from the visitor", clientMsgId: "cluster-1" });
      assert.deepEqual(await waitFor(tab1, "new_private_message"), helloMessage, `agent tab 1 on ${B.node}`);
      assert.deepEqual(await waitFor(tab2, "new_private_message"), helloMessage, `agent tab 2 on ${C.node}`);
      // Both sides are told, on every node: the conversation is assigned, and each sees the other online.
      const assigned = { conversationId, customerId: visitor.user.id, agentId: agent.user.id, agent: agent.user };
      for (const [who, socket] of [[`the visitor on ${A.node}`, customer], [`agent tab 1 on ${B.node}`, tab1], [`agent tab 2 on ${C.node}`, tab2]]) {
        assert.deepEqual(await waitFor(socket, "conversation_assigned"), assigned, who);
      }
      assert.equal(await waitFor(customer, "user_online"), agent.user.id, `the visitor on ${A.node} sees its agent online`);
      assert.deepEqual(await waitFor(customer, "update_member_list"), { userId: agent.user.id, online: true });
      for (const tab of [tab1, tab2]) {
        assert.equal(await waitFor(tab, "user_online"), visitor.user.id, `agent tab on ${tab.node} sees the visitor online`);
        assert.deepEqual(await waitFor(tab, "update_member_list"), { userId: visitor.user.id, online: true });
      }
      assertOk(await ack(tab2, "login", { userId: agent.user.id }), "agent login again, tab 2");
      assert.deepEqual(await waitFor(tab2, "Online_user"), [visitor.user.id], `tab 2 on ${C.node} sees the visitor on ${A.node} online`);

      // Agent tab 1 (B) → visitor (A); the agent's other tab (C) gets it, the sending tab does not.
      const reply = await send(tab1, { receiverId: visitor.user.id, content: "hi from tab 1", clientMsgId: "cluster-2" });
      assert.equal(reply.seq, hello.seq + 1);
      const replyMessage = messageOf(reply, { senderId: agent.user.id, receiverId: visitor.user.id, content: "hi from tab 1", clientMsgId: "cluster-2" });
      assert.deepEqual(await waitFor(customer, "new_private_message"), replyMessage, `visitor on ${A.node}`);
      assert.deepEqual(await waitFor(tab2, "new_private_message"), replyMessage, `the sender's other tab on ${C.node}`);

      // Agent tab 2 (C) → visitor (A); tab 1 (B) gets it.
      const more = await send(tab2, { receiverId: visitor.user.id, content: "and from tab 2" });
      const moreMessage = messageOf(more, { senderId: agent.user.id, receiverId: visitor.user.id, content: "and from tab 2" });
      assert.deepEqual(await waitFor(customer, "new_private_message"), moreMessage, `visitor on ${A.node}`);
      assert.deepEqual(await waitFor(tab1, "new_private_message"), moreMessage, `the sender's other tab on ${B.node}`);
      await expectNo(tab1, "new_private_message", { where: (m) => m.id === reply.id });
      await expectNo(tab2, "new_private_message", { ms: 0, where: (m) => m.id === more.id });

      // Typing both ways.
      assert.deepEqual(await ack(customer, "typing", { typing: true }), { ok: true });
      assert.deepEqual(await waitFor(tab1, "typing"), { userId: visitor.user.id, typing: true });
      assert.deepEqual(await waitFor(tab2, "typing"), { userId: visitor.user.id, typing: true });
      assert.deepEqual(await ack(tab2, "typing", { receiverId: visitor.user.id, typing: false }), { ok: true });
      assert.deepEqual(await waitFor(customer, "typing"), { userId: agent.user.id, typing: false });

      // Read receipts both ways, to the peer and to the reader's other tab.
      const agentRead = assertOk(await ack(tab1, "read", { peerId: visitor.user.id, upToId: hello.id }), "agent read");
      assert.equal(agentRead.seq, hello.seq);
      const agentReadEvent = { readerId: agent.user.id, upToId: hello.id, conversationId, seq: hello.seq };
      assert.deepEqual(await waitFor(customer, "messages_read"), agentReadEvent, `visitor on ${A.node}`);
      assert.deepEqual(await waitFor(tab2, "messages_read"), agentReadEvent, `the reader's other tab on ${C.node}`);
      assertOk(await ack(customer, "read", { peerId: agent.user.id, upToId: more.id }), "visitor read");
      const visitorReadEvent = { readerId: visitor.user.id, upToId: more.id, conversationId, seq: more.seq };
      assert.deepEqual(await waitFor(tab1, "messages_read"), visitorReadEvent, `agent tab 1 on ${B.node}`);
      assert.deepEqual(await waitFor(tab2, "messages_read"), visitorReadEvent, `agent tab 2 on ${C.node}`);

      const history = assertOk(await ack(tab2, "history", { peerId: visitor.user.id }), "history from tab 2");
      assert.deepEqual(history.messages, [helloMessage, replyMessage, moreMessage]);
      assert.equal(history.peerReadSeq, more.seq);

      // Presence: the visitor leaves and comes back; both agent tabs see it.
      customer.disconnect();
      for (const tab of [tab1, tab2]) {
        assert.equal(await waitFor(tab, "user_offline", { where: (id) => id === visitor.user.id }), visitor.user.id);
        assert.deepEqual(await waitFor(tab, "update_member_list", { where: (p) => p.userId === visitor.user.id && !p.online }), { userId: visitor.user.id, online: false });
      }
      const back = await connectFrom(A, visitor.token);
      assertOk(await ack(back, "login", { userId: visitor.user.id }), "visitor login again");
      assert.deepEqual(await waitFor(back, "Online_user"), [agent.user.id]);
      for (const tab of [tab1, tab2]) {
        assert.equal(await waitFor(tab, "user_online", { where: (id) => id === visitor.user.id }), visitor.user.id);
        assert.deepEqual(await waitFor(tab, "update_member_list", { where: (p) => p.userId === visitor.user.id && p.online }), { userId: visitor.user.id, online: true });
      }
      assert.equal(assertOk(await ack(tab1, "all_member")).users.find((m) => m.id === visitor.user.id).online, true);

      // The agent is online while any of its tabs is, on any node: closing tab 1 (B) is no
      // user_offline; closing tab 2 (C) is.
      tab1.disconnect();
      await expectNo(back, "user_offline", { ms: 1_000 });
      assert.equal(assertOk(await ack(back, "all_member")).users[0].online, true, "the agent still has a tab open");
      tab2.disconnect();
      assert.equal(await waitFor(back, "user_offline"), agent.user.id);
      assert.deepEqual(await waitFor(back, "update_member_list", { where: (p) => !p.online }), { userId: agent.user.id, online: false });
    });

    test("a burst from a visitor on one node reaches both agent tabs on two other nodes complete and in seq order", async (t) => {
      if (SKIP) return t.skip(SKIP);
      const agent = await createAgent(A);
      const tab1 = await connectFrom(B, agent.token);
      assertOk(await ack(tab1, "login", { userId: agent.user.id }));
      const tab2 = await connectFrom(C, agent.token);
      assertOk(await ack(tab2, "login", { userId: agent.user.id }));
      const visitor = await createVisitor(A);
      const customer = await connectFrom(A, visitor.token);
      assertOk(await ack(customer, "login", { userId: visitor.user.id, csId: agent.user.id }));
      logPlacement(t, { visitor: customer, "agent tab 1": tab1, "agent tab 2": tab2 });
      const hello = await send(customer, { content: "hello" });
      assert.deepEqual(hello.started, { csId: agent.user.id, queued: false });

      const replies = await Promise.all(Array.from({ length: 100 }, (_, i) => ack(customer, "private_message", { content: `burst ${i}`, clientMsgId: `b-${i}` })));
      replies.forEach((r) => assertOk(r, "burst ack"));
      const seqs = [hello, ...replies].map((r) => r.seq).sort((a, b) => a - b);
      assert.deepEqual(seqs, Array.from({ length: 101 }, (_, i) => i + 1), "the first message and the burst: seqs 1 to 101");
      for (const [name, tab] of [["tab 1", tab1], ["tab 2", tab2]]) {
        const got = await tab.inbox.take("new_private_message", seqs.length, { timeout: 15_000 });
        assert.deepEqual(got.map((m) => m.seq), seqs, `${name} on ${tab.node}: every message once, in seq order`);
      }
    });

    test("every Engine.IO request of one client address went to one node (nginx's access log)", async (t) => {
      if (SKIP) return t.skip(SKIP);
      await sleep(500); // a WebSocket is logged when it closes
      const upstreams = await cluster.nginx.socketIoUpstreams();
      assert.ok(used.size >= 3, `the tests used ${used.size} client addresses`);
      const nodesServing = new Set();
      for (const address of used) {
        const seen = [...(upstreams.get(address) ?? [])];
        t.diagnostic(`${address}: /socket.io/ requests went to ${seen.join(" | ")}`);
        assert.equal(seen.length, 1, `the requests from ${address} went to ${seen.length} upstreams: ${seen.join(" | ")}`);
        const node = cluster.nodeAt(seen[0]);
        assert.equal(node.nodeId, cluster.placement.get(address), `${address} was sent to ${node.nodeId}, not where /healthz went`);
        nodesServing.add(node.nodeId);
      }
      assert.ok(nodesServing.size >= 2, `the clients were served by ${nodesServing.size} node(s) only`);
    });
  });

  describe(`cluster: a node dies [${transport}]`, () => {
    test("its clients reconnect through nginx to another node and resync; the others never notice", async (t) => {
      if (SKIP) return t.skip(SKIP);
      const cluster = await startCluster({ env: { KEFU_MESSAGE_RATE_LIMIT: "0" } });
      t.after(async () => {
        closeAllSockets();
        await cluster.close();
      });
      const spots = await cluster.spread({ perNode: 2 });
      const [A, B, C] = cluster.nodes.map((node) => spots.get(node.nodeId)[0]);
      const A2 = spots.get(cluster.nodes[0].nodeId)[1];
      const [nodeA] = cluster.nodes;

      const agent = await createAgent(B);
      const tab1 = await cluster.connect(B, agent.token, { transport });
      assertOk(await ack(tab1, "login", { userId: agent.user.id }));
      const tab2 = await cluster.connect(C, agent.token, { transport });
      assertOk(await ack(tab2, "login", { userId: agent.user.id }));
      const visitor = await createVisitor(C);
      const customer = await cluster.connect(A, visitor.token, { transport, reconnection: true, reconnectionDelay: 100, reconnectionDelayMax: 500 });
      assertOk(await ack(customer, "login", { userId: visitor.user.id, csId: agent.user.id }));
      assert.deepEqual((await send(customer, { content: "hello" })).started, { csId: agent.user.id, queued: false });
      logPlacement(t, { visitor: customer, "agent tab 1": tab1, "agent tab 2": tab2 });

      // A second visitor of the same agent on node A, which will not come back.
      const gone = await createVisitor(A2);
      const goneSocket = await cluster.connect(A2, gone.token, { transport });
      assertOk(await ack(goneSocket, "login", { userId: gone.user.id, csId: agent.user.id }));
      assert.deepEqual((await send(goneSocket, { content: "hello" })).started, { csId: agent.user.id, queued: false });
      for (const tab of [tab1, tab2]) await waitFor(tab, "user_online", { where: (id) => id === gone.user.id });
      await cluster.expectLiveNodes(B, 5_000);

      const first = await send(tab1, { receiverId: visitor.user.id, content: "before the crash" });
      assert.equal((await waitFor(customer, "new_private_message")).id, first.id);

      const back = reconnected(customer);
      await cluster.kill(nodeA);
      t.diagnostic(`killed ${nodeA.nodeId} (SIGKILL)`);
      await waitForDisconnect(customer, 10_000);

      const missed = [];
      for (let i = 0; i < 3; i++) missed.push(await send(tab1, { receiverId: visitor.user.id, content: `while ${nodeA.nodeId} is down ${i}` }));
      await back;
      const landed = await cluster.nodeFor(A.address);
      t.diagnostic(`the visitor reconnected through nginx to ${landed.nodeId}`);
      assert.notEqual(landed.nodeId, nodeA.nodeId);
      assertOk(await ack(customer, "login", { userId: visitor.user.id }), "login after the reconnect");

      const resync = assertOk(await ack(customer, "history", { afterSeq: first.seq }), "history afterSeq");
      const live = customer.inbox.all("new_private_message").filter((m) => m.seq > first.seq);
      const merged = new Map([...live, ...resync.messages].map((m) => [m.id, m]));
      assert.deepEqual([...merged.keys()].sort(), missed.map((m) => m.id).sort(), "after the resync the visitor has every message sent meanwhile");
      assert.deepEqual(resync.messages.map((m) => m.id), missed.map((m) => m.id));

      // Live both ways again, with the agent's tabs on the surviving nodes.
      const after = await send(tab2, { receiverId: visitor.user.id, content: "welcome back" });
      assert.equal((await waitFor(customer, "new_private_message", { where: (m) => m.id === after.id })).seq, missed.at(-1).seq + 1);
      const answer = await send(customer, { content: "thanks" });
      for (const tab of [tab1, tab2]) assert.equal((await waitFor(tab, "new_private_message", { where: (m) => m.id === answer.id })).content, "thanks");
      assert.equal(tab1.connected && tab2.connected, true, "the agent's tabs on the surviving nodes stayed connected");

      // The dead node's connections count as gone: its users that did not come back go offline,
      // and it leaves the node list.
      for (const tab of [tab1, tab2]) {
        assert.equal(await waitFor(tab, "user_offline", { where: (id) => id === gone.user.id, timeout: 15_000 }), gone.user.id, `agent tab on ${tab.node}: user_offline for a visitor whose node died`);
      }
      assert.equal(assertOk(await ack(tab1, "all_member")).users.find((m) => m.id === gone.user.id).online, false);
      assert.equal(assertOk(await ack(tab1, "all_member")).users.find((m) => m.id === visitor.user.id).online, true, "the visitor that reconnected elsewhere is online");
      const { ms } = await cluster.expectLiveNodes(B, 15_000);
      t.diagnostic(`${nodeA.nodeId} was gone from GET /api/admin/nodes ${ms} ms after its users went offline`);
    });
  });

  describe(`cluster: Redis goes away [${transport}]`, () => {
    test("every node reports not ready and keeps serving its own sockets; when Redis is back, nodes are ready and nothing was lost", async (t) => {
      if (SKIP) return t.skip(SKIP);
      const cluster = await startCluster({ env: { KEFU_MESSAGE_RATE_LIMIT: "0" } });
      t.after(async () => {
        closeAllSockets();
        await cluster.close();
      });
      const spots = await cluster.spread({ perNode: 2 });
      const [nodeB, nodeC] = [cluster.nodes[1], cluster.nodes[2]];
      const [B1, B2] = spots.get(nodeB.nodeId);
      const [C1] = spots.get(nodeC.nodeId);

      // Visitor and agent tab 1 on node B; agent tab 2 on node C.
      const agent = await createAgent(B1);
      const tab1 = await cluster.connect(B1, agent.token, { transport });
      assertOk(await ack(tab1, "login", { userId: agent.user.id }));
      const tab2 = await cluster.connect(C1, agent.token, { transport, reconnection: true, reconnectionDelay: 100, reconnectionDelayMax: 500 });
      assertOk(await ack(tab2, "login", { userId: agent.user.id }));
      tab2.on("connect", () => tab2.emit("login", { userId: agent.user.id }));
      const visitor = await createVisitor(B2);
      const customer = await cluster.connect(B2, visitor.token, { transport });
      assertOk(await ack(customer, "login", { userId: visitor.user.id, csId: agent.user.id }));
      logPlacement(t, { visitor: customer, "agent tab 1": tab1, "agent tab 2": tab2 });
      const first = await send(customer, { content: "before the outage" });
      assert.deepEqual(first.started, { csId: agent.user.id, queued: false });
      assert.equal((await waitFor(tab2, "new_private_message")).id, first.id);
      // Every node has announced itself in Redis (it then lists in GET /api/admin/nodes).
      await cluster.expectLiveNodes(B1, 5_000);

      await cluster.redis.kill();
      t.diagnostic("redis-server killed");
      for (const node of cluster.nodes) {
        const res = await eventually(node, "/readyz", (r) => r.status === 503, `${node.nodeId} with Redis down`);
        assert.equal(res.body?.status, "not ready", `${node.nodeId} /readyz: ${res.text}`);
        assert.equal(typeof res.body.reason, "string");
        assert.ok(res.body.reason.length > 0, "/readyz names the reason");
        t.diagnostic(`${node.nodeId} /readyz: ${res.status} ${res.text}`);
        assert.equal((await request(node, "GET", "/healthz")).status, 200, `${node.nodeId} /healthz: the process is alive`);
      }

      // Node B keeps serving the visitor and the agent's tab it holds.
      const during = await send(customer, { content: "during the outage" });
      assert.equal((await waitFor(tab1, "new_private_message", { where: (m) => m.id === during.id })).content, "during the outage");
      const reply = await send(tab1, { receiverId: visitor.user.id, content: "still here" });
      assert.equal((await waitFor(customer, "new_private_message", { where: (m) => m.id === reply.id })).content, "still here");

      await cluster.redis.start();
      t.diagnostic("redis-server started again on the same port");
      for (const node of cluster.nodes) {
        const res = await eventually(node, "/readyz", (r) => r.status === 200, `${node.nodeId} after Redis came back`);
        assert.deepEqual(res.body, { status: "ready" });
      }

      // Tab 2 on node C missed the live delivery while Redis was down: it must have got the
      // messages, or been told to resync (a `resync` event or a disconnect), never nothing.
      const missedIds = [during.id, reply.id];
      const deadline = Date.now() + 30_000;
      const gotLive = () => missedIds.every((id) => tab2.inbox.all("new_private_message").some((m) => m.id === id));
      while (!gotLive() && tab2.inbox.all("resync").length === 0 && tab2.disconnects.length === 0) {
        assert.ok(
          Date.now() < deadline,
          `30 s after Redis came back, agent tab 2 on ${tab2.node} had neither the messages sent during the outage nor a resync or a disconnect; it received ${JSON.stringify(tab2.inbox.names())}`,
        );
        await sleep(200);
      }
      t.diagnostic(`tab 2: live ${gotLive()}, resync ${JSON.stringify(tab2.inbox.all("resync"))}, disconnects ${JSON.stringify(tab2.disconnects)}`);
      if (!tab2.connected) await reconnected(tab2);
      const history = assertOk(await ack(tab2, "history", { peerId: visitor.user.id, afterSeq: first.seq }), "resync of tab 2");
      assert.deepEqual(history.messages.map((m) => m.id), missedIds, "history afterSeq has what was sent during the outage");

      // Cross-node delivery works again.
      const again = await send(customer, { content: "after the outage" });
      assert.equal((await waitFor(tab2, "new_private_message", { where: (m) => m.id === again.id, timeout: 10_000 })).content, "after the outage");
      const fromC = await send(tab2, { receiverId: visitor.user.id, content: "from node C again" });
      assert.equal((await waitFor(customer, "new_private_message", { where: (m) => m.id === fromC.id })).content, "from node C again");
    });
  });
}
