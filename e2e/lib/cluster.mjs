// A kefu cluster for the end-to-end tests: three nodes on one database and one Redis of their
// own, behind an nginx of its own configured from deploy/nginx/kefu.conf, and client endpoints on
// different loopback addresses (127.0.0.N) so that nginx's `hash $remote_addr` spreads them over
// the nodes the way it spreads real visitors.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { adminToken, request } from "./api.mjs";
import { connect, sleep } from "./client.mjs";
import { createDatabase, liveServers, startServer } from "./server.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, "..", "..");

/** The nginx snippet that docs/deploy.md tells operators to install. */
export const NGINX_CONF = path.join(repoRoot, "deploy", "nginx", "kefu.conf");

/** The header the test's nginx adds to every response: the node (address) that answered. */
const UPSTREAM_HEADER = "x-kefu-e2e-upstream";
const START_TIMEOUT_MS = 15_000;
const STOP_TIMEOUT_MS = 10_000;
const LOG_LINES_KEPT = 400;

/**
 * The executable `process.env[variable]` if set, else the first `name` on PATH or in the sbin
 * directories (nginx lives there, outside a normal user's PATH). Throws `missing` if none exists.
 */
function findExecutable(name, variable, missing) {
  const given = process.env[variable];
  if (given) {
    if (!existsSync(given)) throw new Error(`${variable}=${given}: no such file. ${missing}`);
    return given;
  }
  const dirs = [...(process.env.PATH ?? "").split(":"), "/usr/sbin", "/usr/local/sbin", "/sbin"];
  const found = dirs.filter(Boolean).map((dir) => path.join(dir, name)).find((p) => existsSync(p));
  if (!found) throw new Error(`${name} not found on PATH nor in /usr/sbin. ${missing}`);
  return found;
}

const nginxBinary = () =>
  findExecutable("nginx", "KEFU_E2E_NGINX", "The cluster tests run through nginx: install it (apt-get install nginx) or set KEFU_E2E_NGINX.");

const redisBinary = () =>
  findExecutable("redis-server", "KEFU_E2E_REDIS_SERVER", "Cluster mode needs Redis: install it (apt-get install redis-server) or set KEFU_E2E_REDIS_SERVER.");

/** A TCP port on 127.0.0.1 that was free a moment ago. */
async function freePort() {
  const listener = net.createServer();
  await new Promise((resolve, reject) => {
    listener.once("error", reject);
    listener.listen(0, "127.0.0.1", resolve);
  });
  const { port } = listener.address();
  await new Promise((resolve) => listener.close(resolve));
  return port;
}

/**
 * A helper process (nginx, redis-server) whose output is kept like a kefu server's: it is listed
 * in liveServers, so a failing test prints its log and an aborted run kills it.
 */
class Daemon {
  constructor(name, command, args, { port, dir }) {
    this.name = name;
    this.port = port;
    this.dataDir = dir;
    this.lines = [];
    this.child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
    this.exited = false;
    this.exit = new Promise((resolve) => {
      this.child.on("exit", (code, signal) => resolve({ code, signal }));
      this.child.on("error", (error) => resolve({ code: null, signal: null, error }));
    });
    this.exit.then(() => (this.exited = true));
    for (const [stream, source] of [["stdout", this.child.stdout], ["stderr", this.child.stderr]]) {
      let partial = "";
      source.setEncoding("utf8");
      source.on("data", (chunk) => {
        const parts = (partial + chunk).split("\n");
        partial = parts.pop();
        for (const line of parts) this.#record(stream, line);
      });
      source.on("end", () => partial && this.#record(stream, partial));
    }
    liveServers.add(this);
  }

  #record(stream, line) {
    if (process.env.KEFU_E2E_ECHO) process.stderr.write(`[${this.name} ${stream}] ${line}\n`);
    this.lines.push(`${stream}: ${line}`);
    if (this.lines.length > LOG_LINES_KEPT) this.lines.shift();
  }

  logTail(lines = 60) {
    return this.lines.slice(-lines).join("\n");
  }

  /** Resolves once `probe()` resolves true; rejects if the process exits first or after START_TIMEOUT_MS. */
  async waitUntil(probe, what) {
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      if (this.exited) {
        const { code, signal, error } = await this.exit;
        throw new Error(`${this.name} exited before ${what} (code ${code}, signal ${signal}${error ? `, ${error.message}` : ""})\n${this.logTail()}`);
      }
      if (await probe().catch(() => false)) return;
      if (Date.now() > deadline) throw new Error(`${this.name}: not ${what} within ${START_TIMEOUT_MS} ms\n${this.logTail()}`);
      await sleep(50);
    }
  }

  /** Sends `signal` and waits for the exit (SIGKILL after STOP_TIMEOUT_MS). */
  async stop(signal = "SIGTERM") {
    liveServers.delete(this);
    if (!this.exited) this.child.kill(signal);
    let timer;
    const timeout = new Promise((resolve) => (timer = setTimeout(() => resolve("timeout"), STOP_TIMEOUT_MS)));
    const result = await Promise.race([this.exit, timeout]);
    clearTimeout(timer);
    if (result === "timeout") {
      this.child.kill("SIGKILL");
      await this.exit;
      throw new Error(`${this.name} did not exit within ${STOP_TIMEOUT_MS} ms of ${signal}\n${this.logTail()}`);
    }
    return result;
  }
}

/** Answers true if a Redis server answers PING on `port`. */
function redisPing(port) {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    let reply = "";
    socket.setTimeout(1_000, () => socket.destroy());
    socket.on("connect", () => socket.write("PING\r\n"));
    socket.on("data", (chunk) => {
      reply += chunk;
      if (reply.includes("\r\n")) {
        socket.destroy();
        resolve(reply.startsWith("+PONG"));
      }
    });
    socket.on("error", () => resolve(false));
    socket.on("close", () => resolve(false));
  });
}

/**
 * A redis-server of the cluster's own on a free port: nothing left over from another run (stale
 * presence, another cluster's pub/sub traffic) can reach the nodes, and a test can stop it and
 * start it again on the same port.
 */
export class Redis {
  constructor(dir) {
    this.dir = dir;
    this.bin = redisBinary();
    this.daemon = undefined;
  }

  get url() {
    return `redis://127.0.0.1:${this.port}`;
  }

  /** Starts redis-server (on the same port as before, after a stop()). */
  async start() {
    this.port ??= await freePort();
    await mkdir(this.dir, { recursive: true });
    const args = ["--port", String(this.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", this.dir, "--daemonize", "no"];
    this.daemon = new Daemon("redis-server", this.bin, args, { port: this.port, dir: this.dir });
    await this.daemon.waitUntil(() => redisPing(this.port), "answering PING");
  }

  /** Kills redis-server outright (SIGKILL), as a crash or a lost host would. */
  async kill() {
    await this.daemon?.stop("SIGKILL");
  }

  async close() {
    await this.daemon?.stop("SIGTERM");
  }
}

/**
 * deploy/nginx/kefu.conf with its upstream `server` lines pointed at `upstreamPorts` and its
 * `listen` line at 127.0.0.1:`listenPort`. Nothing else is changed: the tests run through the
 * file operators install.
 */
export async function nginxSiteConfig(upstreamPorts, listenPort) {
  const text = await readFile(NGINX_CONF, "utf8");
  const servers = text.match(/^\s*server\s+[^\s;{]+:\d+\b[^;]*;/gm) ?? [];
  assert.equal(servers.length, upstreamPorts.length, `${NGINX_CONF} has ${servers.length} upstream server lines, the cluster has ${upstreamPorts.length} nodes`);
  const listens = text.match(/^\s*listen\s+[^;]+;/gm) ?? [];
  assert.equal(listens.length, 1, `${NGINX_CONF} must have exactly one (uncommented) listen line, it has ${listens.length}`);
  let next = 0;
  return text
    .replace(/^(\s*server\s+)[^\s;{]+:\d+\b([^;]*;)/gm, (_, head, rest) => `${head}127.0.0.1:${upstreamPorts[next++]}${rest}`)
    .replace(/^(\s*listen\s+)[^;]+;/m, (_, head) => `${head}127.0.0.1:${listenPort};`);
}

/** nginx in the foreground with everything (pid, logs, temp files) inside `dir`, serving deploy/nginx/kefu.conf. */
export class Nginx {
  constructor(dir) {
    this.dir = dir;
    this.bin = nginxBinary();
  }

  get accessLog() {
    return path.join(this.dir, "access.log");
  }

  async start(upstreamPorts) {
    await mkdir(this.dir, { recursive: true });
    // Run as root, nginx's workers drop to `nobody`: they must reach the temp dirs.
    await chmod(this.dir, 0o755);
    this.port = await freePort();
    this.url = `http://127.0.0.1:${this.port}`;
    await writeFile(path.join(this.dir, "kefu.conf"), await nginxSiteConfig(upstreamPorts, this.port));
    const inDir = (name) => path.join(this.dir, name);
    // The test's own additions live here, outside kefu.conf: paths, and a log format and a
    // response header naming the node that answered each request.
    await writeFile(
      inDir("nginx.conf"),
      `daemon off;
worker_processes 1;
pid ${inDir("nginx.pid")};
error_log stderr warn;
events { worker_connections 1024; }
http {
    client_body_temp_path ${inDir("client_body")};
    proxy_temp_path ${inDir("proxy")};
    fastcgi_temp_path ${inDir("fastcgi")};
    uwsgi_temp_path ${inDir("uwsgi")};
    scgi_temp_path ${inDir("scgi")};
    log_format kefu_e2e '$remote_addr "$request" $status upstream=$upstream_addr';
    access_log ${this.accessLog} kefu_e2e;
    add_header X-Kefu-E2E-Upstream $upstream_addr always;
    include ${inDir("kefu.conf")};
}
`,
    );
    this.daemon = new Daemon("nginx", this.bin, ["-c", inDir("nginx.conf"), "-p", `${this.dir}/`], { port: this.port, dir: this.dir });
    await this.daemon.waitUntil(async () => (await fetch(`${this.url}/healthz`, { signal: AbortSignal.timeout(1_000) })).status === 200, "proxying /healthz");
  }

  /**
   * The nodes (upstream addresses) that nginx sent each client address's Engine.IO requests to,
   * from the access log: Map address → Set of `$upstream_addr` values.
   */
  async socketIoUpstreams() {
    const text = await readFile(this.accessLog, "utf8").catch(() => "");
    const byAddress = new Map();
    for (const line of text.split("\n")) {
      const m = line.match(/^(\S+) "\S+ (\S+) [^"]*" \d+ upstream=(.*)$/);
      if (!m || !m[2].startsWith("/socket.io/")) continue;
      if (!byAddress.has(m[1])) byAddress.set(m[1], new Set());
      byAddress.get(m[1]).add(m[3]);
    }
    return byAddress;
  }

  async close() {
    // SIGTERM is nginx's fast shutdown: it does not wait for open WebSockets as SIGQUIT would.
    const { code, signal } = await this.daemon.stop("SIGTERM");
    if (code !== 0) throw new Error(`nginx exited with code ${code} (signal ${signal})\n${this.daemon.logTail()}`);
  }
}

/** GET `path` through nginx from `localAddress`; resolves with { status, upstream }. */
function probe(url, localAddress, path = "/healthz") {
  return new Promise((resolve, reject) => {
    const req = http.get(`${url}${path}`, { localAddress, agent: false, timeout: 5_000 }, (res) => {
      res.resume();
      res.on("end", () => resolve({ status: res.statusCode, upstream: res.headers[UPSTREAM_HEADER] }));
    });
    req.on("timeout", () => req.destroy(new Error(`GET ${path} from ${localAddress}: no answer within 5 s`)));
    req.on("error", reject);
  });
}

/**
 * Starts `nodes` kefu nodes in cluster mode on one fresh database (mysql or postgres) and a Redis
 * of their own, with one JWT secret and distinct node ids, then nginx in front of them.
 * options.env: extra environment for every node.
 */
export async function startCluster({ nodes = 3, env = {} } = {}) {
  const cluster = new Cluster();
  try {
    await cluster.start(nodes, env);
  } catch (err) {
    await cluster.close().catch((closeErr) => console.error(`cleaning up a cluster that did not start: ${closeErr.message}`));
    throw err;
  }
  return cluster;
}

class Cluster {
  nodes = [];
  agents = new Set();
  /** address → node id, for every client address probed so far. */
  placement = new Map();

  async start(count, env) {
    this.dir = await mkdtemp(path.join(tmpdir(), "kefu-e2e-cluster-"));
    this.redis = new Redis(path.join(this.dir, "redis"));
    this.nginx = new Nginx(path.join(this.dir, "nginx"));
    this.database = await createDatabase();
    assert.ok(this.database.url, "cluster mode needs a server database (KEFU_E2E_DB=mysql or postgres)");
    await this.redis.start();
    this.adminPassword = `pw-${randomBytes(12).toString("hex")}`;
    const jwtSecret = randomBytes(32).toString("hex");
    const prefix = `e2e-${randomBytes(3).toString("hex")}`;
    // One after the other: the first node runs the migrations and creates the admin.
    for (let i = 1; i <= count; i++) {
      const id = `${prefix}-node-${i}`;
      const node = await startServer({
        database: this.database,
        sharedDatabase: true,
        adminPassword: this.adminPassword,
        name: `kefu ${id}`,
        env: { KEFU_REDIS_URL: this.redis.url, KEFU_NODE_ID: id, KEFU_JWT_SECRET: jwtSecret, ...env },
      });
      node.nodeId = id;
      this.nodes.push(node);
    }
    await this.nginx.start(this.nodes.map((node) => node.port));
    this.url = this.nginx.url;
  }

  /** The node that serves upstream address `upstream` ("127.0.0.1:PORT"; the last one if nginx tried several). */
  nodeAt(upstream) {
    const port = Number(String(upstream).split(",").at(-1).trim().split(":").at(-1));
    const node = this.nodes.find((n) => n.port === port);
    assert.ok(node, `nginx answered from ${upstream}, which is no node of this cluster (${this.nodes.map((n) => n.port).join(", ")})`);
    return node;
  }

  /** The node nginx sends requests from `address` to (asks nginx with GET /healthz). */
  async nodeFor(address) {
    const { status, upstream } = await probe(this.url, address);
    assert.equal(status, 200, `GET /healthz through nginx from ${address}`);
    assert.ok(upstream, `nginx's response lacks the ${UPSTREAM_HEADER} header the test adds (does deploy/nginx/kefu.conf set add_header of its own?)`);
    const node = this.nodeAt(upstream);
    this.placement.set(address, node.nodeId);
    return node;
  }

  /**
   * Client endpoints spread over the nodes: probes 127.0.0.2, .3, … until every node has
   * `perNode` addresses that nginx sends to it. Resolves to Map node id → [endpoint].
   */
  async spread({ perNode = 1, maxProbes = 250 } = {}) {
    const byNode = new Map(this.nodes.map((node) => [node.nodeId, []]));
    for (let n = 2; n < 2 + maxProbes; n++) {
      const address = `127.0.0.${n}`;
      const node = await this.nodeFor(address);
      const list = byNode.get(node.nodeId);
      if (list.length < perNode) list.push(this.endpoint(address, node));
      if ([...byNode.values()].every((l) => l.length >= perNode)) {
        // Stickiness: asked again, nginx sends each chosen address to the same node.
        for (const endpoint of [...byNode.values()].flat()) {
          for (let i = 0; i < 3; i++) {
            const again = await probe(this.url, endpoint.address);
            assert.equal(this.nodeAt(again.upstream).nodeId, endpoint.node, `nginx sent ${endpoint.address} to ${endpoint.node}, then to another node: not sticky by client address`);
          }
        }
        return byNode;
      }
    }
    const counts = [...byNode].map(([id, list]) => `${id}: ${list.length}`).join(", ");
    assert.fail(`${maxProbes} client addresses did not cover every node ${perNode} time(s) (${counts}): nginx does not spread clients by address`);
  }

  /**
   * What a client at `address` uses: REST through an http.Agent bound to that address, and
   * sockets through connect(endpoint, token, options) (see socketOptions).
   */
  endpoint(address, node) {
    const agent = new http.Agent({ localAddress: address, keepAlive: true });
    this.agents.add(agent);
    return { url: this.url, address, node: node.nodeId, adminPassword: this.adminPassword, agent, sockets: new Set() };
  }

  /**
   * socket.io-client options that make a socket come from `endpoint.address`: long-polling
   * requests go through an http.Agent bound to it (one per socket, like one browser), the
   * WebSocket handshake binds it with `localAddress`.
   */
  socketOptions(endpoint, transport) {
    if (transport === "polling") {
      const agent = new http.Agent({ localAddress: endpoint.address, keepAlive: true });
      this.agents.add(agent);
      return { transport, agent };
    }
    return { transport, localAddress: endpoint.address };
  }

  /** connect() from `endpoint`'s address over `transport`; the socket keeps `address` and the `node` nginx sends it to. */
  async connect(endpoint, token, { transport, ...options }) {
    const socket = await connect(endpoint, token, { ...this.socketOptions(endpoint, transport), ...options });
    socket.address = endpoint.address;
    socket.node = endpoint.node;
    return socket;
  }

  /** GET /api/admin/nodes through nginx. */
  async adminNodes(endpoint) {
    const res = await request(endpoint, "GET", "/api/admin/nodes", { token: await adminToken(endpoint) });
    assert.equal(res.status, 200, `GET /api/admin/nodes: ${res.status} ${res.text}`);
    return res.body.nodes;
  }

  /**
   * Waits (up to `timeout` ms) until GET /api/admin/nodes lists exactly the nodes not killed;
   * resolves with the list and how long that took.
   */
  async expectLiveNodes(endpoint, timeout = 5_000) {
    const started = Date.now();
    const wanted = this.nodes.filter((n) => !n.killed).map((n) => n.nodeId).sort();
    for (;;) {
      const nodes = await this.adminNodes(endpoint);
      const ids = nodes.map((n) => n.id).sort();
      if (JSON.stringify(ids) === JSON.stringify(wanted)) return { nodes, ms: Date.now() - started };
      if (Date.now() - started > timeout) {
        assert.deepEqual(ids, wanted, `GET /api/admin/nodes: the live nodes, still after ${timeout} ms`);
      }
      await sleep(100);
    }
  }

  /**
   * Waits (up to `timeout` ms) until GET /api/admin/nodes reports `expected` (node id → count)
   * connections on each node; fails with the last answer.
   */
  async expectConnections(endpoint, expected, timeout = 10_000) {
    const deadline = Date.now() + timeout;
    let seen;
    for (;;) {
      const nodes = await this.adminNodes(endpoint);
      seen = Object.fromEntries(nodes.map((n) => [n.id, n.connections]));
      const wanted = Object.fromEntries(this.nodes.filter((n) => !n.killed).map((n) => [n.nodeId, expected[n.nodeId] ?? 0]));
      if (JSON.stringify(Object.entries(seen).sort()) === JSON.stringify(Object.entries(wanted).sort())) return nodes;
      if (Date.now() > deadline) {
        assert.deepEqual(seen, wanted, `GET /api/admin/nodes: connections per node after ${timeout} ms`);
      }
      await sleep(200);
    }
  }

  /** Kills a node with SIGKILL, as a crash would. */
  async kill(node) {
    node.killed = true;
    await node.kill();
  }

  /** Stops nginx, the nodes (each must exit 0 on SIGTERM) and Redis; drops the database. */
  async close() {
    const errors = [];
    const attempt = async (fn) => {
      try {
        await fn();
      } catch (err) {
        errors.push(err);
      }
    };
    if (this.nginx?.daemon) await attempt(() => this.nginx.close());
    for (const node of this.nodes) await attempt(() => node.close());
    await attempt(() => this.redis?.close());
    if (this.database) await attempt(() => this.database.drop());
    for (const agent of this.agents) agent.destroy();
    if (this.dir) await rm(this.dir, { recursive: true, force: true });
    if (errors.length > 0) throw errors[0];
  }
}
