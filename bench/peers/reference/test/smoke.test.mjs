// Smoke test: starts the reference server on SQLite (and on MariaDB/MySQL when one answers on
// 127.0.0.1:3306 as root), provisions an admin → agent and a visitor the way kefu-bench does, logs
// both in over Socket.IO, sends messages with acks and checks their delivery, the acks and what
// was stored.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { after, describe, test } from "node:test";
import mysql from "mysql2/promise";
import { io } from "socket.io-client";

const SERVER = join(dirname(fileURLToPath(import.meta.url)), "..", "server.mjs");
const ADMIN_PASSWORD = "smoke-admin-pass";
const MYSQL_SERVER = "mysql://root@127.0.0.1:3306";
const TIMEOUT = 5_000;

/** Starts the server; resolves once it printed its address. */
function startPeer(args) {
  const child = spawn(process.execPath, [SERVER, "--port", "0", ...args], {
    env: { ...process.env, KEFU_ADMIN_PASSWORD: ADMIN_PASSWORD },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  const exited = new Promise((resolve) => child.on("exit", (code, signal) => resolve({ code, signal })));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no address within 15 s:\n${output}`)), 15_000);
    const onData = (chunk) => {
      output += chunk;
      const match = /^listening on (http:\/\/\S+)$/m.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve({
          url: match[1],
          pid: child.pid,
          output: () => output,
          async stop() {
            child.kill("SIGTERM");
            return exited;
          },
        });
      }
    };
    child.stdout.setEncoding("utf8").on("data", onData);
    child.stderr.setEncoding("utf8").on("data", (chunk) => (output += chunk));
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`the server exited (${code ?? signal}) before listening:\n${output}`));
    });
  });
}

async function post(peer, path, body, token) {
  const response = await fetch(peer.url + path, {
    method: "POST",
    headers: { "content-type": "application/json", ...(token && { authorization: `Bearer ${token}` }) },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: await response.json() };
}

function connect(peer, token) {
  const socket = io(peer.url, { auth: { token }, transports: ["websocket"], reconnection: false, forceNew: true });
  const events = [];
  socket.onAny((name, ...args) => events.push({ name, data: args[0] }));
  return new Promise((resolve, reject) => {
    socket.once("connect", () => resolve({ socket, events }));
    socket.once("connect_error", reject);
  });
}

const call = (client, event, ...args) => client.socket.timeout(TIMEOUT).emitWithAck(event, ...args);

function nextEvent(client, name) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ${name} within ${TIMEOUT} ms`)), TIMEOUT);
    client.socket.once(name, (data) => {
      clearTimeout(timer);
      resolve(data);
    });
  });
}

const settle = () => new Promise((resolve) => setTimeout(resolve, 200));

/** Provisions like kefu-bench: admin login, an agent, its login, a visitor. */
async function provision(peer) {
  const admin = await post(peer, "/api/login", { username: "admin", password: ADMIN_PASSWORD });
  assert.equal(admin.status, 200, JSON.stringify(admin.body));
  assert.equal(admin.body.user.role, "admin");
  assert.equal(typeof admin.body.token, "string");

  const username = `smoke-${process.pid}-${Math.floor(Math.random() * 1e9).toString(36)}`;
  const password = "smoke-password";
  const noToken = await post(peer, "/api/agents", { username, password });
  assert.equal(noToken.status, 401);
  assert.equal(noToken.body.error.code, "unauthorized");
  const created = await post(peer, "/api/agents", { username, password }, admin.body.token);
  assert.equal(created.status, 201, JSON.stringify(created.body));
  assert.deepEqual(Object.keys(created.body.user).sort(), ["id", "role", "username"]);
  assert.equal(created.body.user.role, "agent");
  const again = await post(peer, "/api/agents", { username, password }, admin.body.token);
  assert.equal(again.status, 409);
  assert.equal(again.body.error.code, "conflict");

  const wrong = await post(peer, "/api/login", { username, password: "not-the-password" });
  assert.equal(wrong.status, 401);
  const agent = await post(peer, "/api/login", { username, password });
  assert.equal(agent.status, 200, JSON.stringify(agent.body));
  assert.equal(agent.body.user.id, created.body.user.id);
  assert.match(agent.body.user.id, /^\d+$/);

  const agentCannotCreate = await post(peer, "/api/agents", { username: `${username}-2`, password }, agent.body.token);
  assert.equal(agentCannotCreate.status, 403);

  const visitor = await post(peer, "/api/visitors", {});
  assert.equal(visitor.status, 201, JSON.stringify(visitor.body));
  assert.equal(visitor.body.user.role, "customer");
  assert.match(visitor.body.user.id, /^\d+$/);
  assert.equal(typeof visitor.body.token, "string");
  return { agent: agent.body, visitor: visitor.body };
}

async function chat(peer, { presence }) {
  const { agent, visitor } = await provision(peer);
  const a = await connect(peer, agent.token);
  const v = await connect(peer, visitor.token);
  try {
    const agentLogin = await call(a, "login", { userId: agent.user.id });
    assert.deepEqual(agentLogin, { ok: true, csId: agent.user.id });

    const online = presence ? nextEvent(a, "user_online") : undefined;
    const visitorLogin = await call(v, "login", { userId: visitor.user.id, csId: agent.user.id });
    assert.deepEqual(visitorLogin, { ok: true, csId: agent.user.id });
    if (presence) {
      // The reference's global broadcast: everybody hears of the login, with every online user.
      assert.equal(await online, visitor.user.id);
      await settle();
      const list = a.events.findLast((e) => e.name === "Online_user");
      assert.ok(list, "no Online_user");
      assert.deepEqual(new Set(list.data.map(([id]) => id)), new Set([agent.user.id, visitor.user.id]));
    }

    // The reference's payload: senderId and receiverId given by the client.
    const content = `t:${String(Date.now() * 1000).padStart(20, "0")}:hello from the visitor`;
    const delivered = nextEvent(a, "new_private_message");
    const ack = await call(v, "private_message", {
      senderId: visitor.user.id,
      receiverId: agent.user.id,
      content,
    });
    assert.equal(ack.ok, true, JSON.stringify(ack));
    assert.match(ack.id, /^\d+$/);
    assert.equal(ack.seq, Number(ack.id));
    const message = await delivered;
    assert.equal(message.content, content);
    assert.equal(message.senderId, visitor.user.id);
    assert.equal(message.receiverId, agent.user.id);
    assert.ok(!Number.isNaN(Date.parse(message.timestamp)), `timestamp ${message.timestamp}`);
    assert.equal(message.id, undefined, "the reference pushes before it stores: no id yet");

    // kefu-bench's payload: content only; the socket's user writes to the agent it logged in with.
    const second = nextEvent(a, "new_private_message");
    const ack2 = await call(v, "private_message", { content: "second" });
    assert.equal(ack2.ok, true, JSON.stringify(ack2));
    assert.ok(Number(ack2.id) > Number(ack.id));
    assert.deepEqual(
      { ...(await second), timestamp: undefined },
      { senderId: visitor.user.id, receiverId: agent.user.id, content: "second", timestamp: undefined },
    );

    // And back: the agent answers with the visitor's id.
    const reply = nextEvent(v, "new_private_message");
    const ack3 = await call(a, "private_message", { receiverId: visitor.user.id, content: "hi, how can I help?" });
    assert.equal(ack3.ok, true, JSON.stringify(ack3));
    assert.equal((await reply).content, "hi, how can I help?");

    // An agent cannot omit the receiver: there is no default for it.
    const refused = await call(a, "private_message", { content: "to whom?" });
    assert.deepEqual(refused.ok, false);
    assert.equal(refused.error.code, "invalid_payload");

    // all_member: the room's users with the unread counts of the article's query (both stored).
    const listed = nextEvent(a, "myUsersList");
    const members = await call(a, "all_member");
    assert.equal(members.ok, true, JSON.stringify(members));
    assert.deepEqual(await listed, members.users);
    const byId = new Map(members.users.map((u) => [String(u.id), u]));
    assert.deepEqual(new Set(byId.keys()), new Set([agent.user.id, visitor.user.id]));
    assert.equal(byId.get(visitor.user.id).role, "customer");
    assert.equal(byId.get(visitor.user.id).username, visitor.user.username);
    assert.equal(Number(byId.get(visitor.user.id).message_count), 2);
    assert.equal(Number(byId.get(agent.user.id).message_count), 0);

    assert.deepEqual(await call(v, "heartbeat"), { ok: true });

    // The visitor leaves: with presence on, everybody hears it.
    const offline = presence ? nextEvent(a, "user_offline") : undefined;
    v.socket.disconnect();
    if (presence) assert.equal(await offline, visitor.user.id);
    await settle();
    if (!presence) {
      const names = new Set(a.events.map((e) => e.name));
      for (const name of ["user_online", "Online_user", "user_offline", "update_member_list"]) {
        assert.ok(!names.has(name), `${name} sent with presence off`);
      }
    }

    // The visitor is gone: a message to it is stored (and acked) but delivered to nobody.
    const ack4 = await call(a, "private_message", { receiverId: visitor.user.id, content: "still there?" });
    assert.equal(ack4.ok, true, JSON.stringify(ack4));
  } finally {
    a.socket.disconnect();
    v.socket.disconnect();
  }
}

describe("sqlite", () => {
  for (const presence of ["on", "off"]) {
    test(`chat with presence ${presence}, temporary database removed on exit`, async () => {
      const peer = await startPeer(["--db", "sqlite", "--presence", presence]);
      let stopped = false;
      try {
        await chat(peer, { presence: presence === "on" });
      } finally {
        const { code } = await peer.stop();
        stopped = code === 0;
      }
      assert.ok(stopped, `the server did not stop cleanly:\n${peer.output()}`);
      const left = readdirSync(tmpdir()).filter((name) => name.startsWith(`kefu-reference-${peer.pid}-`));
      assert.deepEqual(left, [], "the temporary database was left behind");
    });
  }

  test("a given --sqlite-path keeps its messages across a restart", async () => {
    const dir = mkdtempSync(join(tmpdir(), "kefu-reference-smoke-"));
    after(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, "peer.db");
    let peer = await startPeer(["--sqlite-path", path]);
    const { agent, visitor } = await provision(peer);
    const v = await connect(peer, visitor.token);
    await call(v, "login", { userId: visitor.user.id, csId: agent.user.id });
    assert.equal((await call(v, "private_message", { content: "kept" })).ok, true);
    v.socket.disconnect();
    assert.equal((await peer.stop()).code, 0);
    assert.ok(existsSync(path));

    peer = await startPeer(["--sqlite-path", path]);
    try {
      const a = await connect(peer, agent.token);
      const v2 = await connect(peer, visitor.token);
      await call(a, "login", { userId: agent.user.id });
      await call(v2, "login", { userId: visitor.user.id, csId: agent.user.id });
      const members = await call(a, "all_member");
      const me = members.users.find((u) => String(u.id) === visitor.user.id);
      assert.equal(Number(me.message_count), 1);
      a.socket.disconnect();
      v2.socket.disconnect();
    } finally {
      assert.equal((await peer.stop()).code, 0);
    }
  });
});

async function mysqlReachable() {
  try {
    const connection = await mysql.createConnection({ uri: MYSQL_SERVER, connectTimeout: 2_000 });
    await connection.end();
    return true;
  } catch {
    return false;
  }
}

const reachable = await mysqlReachable();
describe("mysql", { skip: reachable ? false : `no MySQL/MariaDB at ${MYSQL_SERVER}` }, () => {
  const database = `kefu_reference_smoke_${process.pid}`;
  after(async () => {
    const connection = await mysql.createConnection(MYSQL_SERVER);
    await connection.query(`DROP DATABASE IF EXISTS \`${database}\``);
    await connection.end();
  });

  for (const presence of ["on", "off"]) {
    test(`chat with presence ${presence}`, async () => {
      const peer = await startPeer(["--db", "mysql", "--mysql-url", `${MYSQL_SERVER}/${database}`, "--presence", presence]);
      try {
        await chat(peer, { presence: presence === "on" });
      } finally {
        assert.equal((await peer.stop()).code, 0, peer.output());
      }
    });
  }
});
