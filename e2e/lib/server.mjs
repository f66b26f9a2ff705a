// Starts and stops the real kefu binary on port 0 with a fresh data dir and database.
import { spawn, execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";

const execFileAsync = promisify(execFile);
const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, "..", "..");

export const KEFU_BIN = process.env.KEFU_BIN
  ? path.resolve(process.cwd(), process.env.KEFU_BIN)
  : path.join(repoRoot, "target", "debug", "kefu");

export const DB_KIND = (process.env.KEFU_E2E_DB ?? "sqlite").toLowerCase();
if (!["sqlite", "mysql", "postgres"].includes(DB_KIND)) {
  throw new Error(`KEFU_E2E_DB must be sqlite, mysql or postgres, not "${DB_KIND}"`);
}

const STARTUP_TIMEOUT_MS = 30_000;
const SHUTDOWN_TIMEOUT_MS = 10_000;
const LOG_LINES_KEPT = 400;

/** Every server not yet closed, so a failing test can print their logs. */
export const liveServers = new Set();

const randomName = () => randomBytes(6).toString("hex");

/**
 * A fresh, empty database for one server (and its restarts). For sqlite the server creates its
 * own file in the data dir, so there is nothing to do.
 */
export async function createDatabase(kind = DB_KIND) {
  if (kind === "sqlite") return { kind, url: undefined, drop: async () => {} };
  const name = `kefu_e2e_${randomName()}`;
  if (kind === "mysql") {
    await execFileAsync("mysql", ["-uroot", "-h127.0.0.1", "-e", `CREATE DATABASE ${name}`]);
    return {
      kind,
      name,
      host: "127.0.0.1",
      port: 3306,
      url: `mysql://root@127.0.0.1:3306/${name}`,
      urlVia: (host, port) => `mysql://root@${host}:${port}/${name}`,
      drop: () => execFileAsync("mysql", ["-uroot", "-h127.0.0.1", "-e", `DROP DATABASE IF EXISTS ${name}`]),
    };
  }
  const psql = (sql) => execFileAsync("psql", ["-h", "127.0.0.1", "-U", "postgres", "-d", "test", "-v", "ON_ERROR_STOP=1", "-c", sql]);
  await psql(`CREATE DATABASE ${name}`);
  return {
    kind,
    name,
    host: "127.0.0.1",
    port: 5432,
    url: `postgres://postgres@127.0.0.1:5432/${name}`,
    urlVia: (host, port) => `postgres://postgres@${host}:${port}/${name}`,
    drop: () => psql(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`),
  };
}

/**
 * Starts `kefu serve` and resolves once it prints its listening address.
 *
 * options.env: extra environment (e.g. { KEFU_MESSAGE_RATE_LIMIT: "0" }); a value of undefined
 *   removes the variable, so the server's default applies.
 * options.dataDir / options.database / options.adminPassword: reuse those of a previous run
 *   (restart); otherwise fresh ones are made and removed again by close().
 * options.sharedDatabase: `options.database` is shared by several servers (a cluster) and its
 *   owner drops it; close() leaves it alone.
 * options.name: how the server is named when its log is printed (default "kefu").
 */
export async function startServer(options = {}) {
  if (!existsSync(KEFU_BIN)) {
    throw new Error(`kefu binary not found at ${KEFU_BIN}; build it or set KEFU_BIN`);
  }
  const dataDir = options.dataDir ?? (await mkdtemp(path.join(tmpdir(), "kefu-e2e-")));
  const database = options.database ?? (await createDatabase());
  const adminPassword = options.adminPassword ?? `pw-${randomBytes(12).toString("hex")}`;
  const env = {
    ...process.env,
    KEFU_ADMIN_PASSWORD: adminPassword,
    KEFU_LOG: process.env.KEFU_LOG ?? "warn",
    // Every client of the suite comes from 127.0.0.1: the per-address limits are off unless a test
    // turns them on.
    KEFU_VISITOR_RATE_PER_MINUTE: "0",
    KEFU_HANDSHAKE_RATE_LIMIT: "0",
    KEFU_LOGIN_FAILURES_PER_MINUTE: "0",
  };
  delete env.KEFU_DATABASE_URL;
  if (options.databaseUrl ?? database.url) env.KEFU_DATABASE_URL = options.databaseUrl ?? database.url;
  for (const [key, value] of Object.entries(options.env ?? {})) {
    if (value === undefined) delete env[key];
    else env[key] = String(value);
  }

  const child = spawn(KEFU_BIN, ["serve", "--listen", "127.0.0.1:0", "--data-dir", dataDir], {
    env,
    stdio: ["ignore", "pipe", "pipe"],
  });
  const server = new Server({ child, dataDir, database, adminPassword, options });
  liveServers.add(server);
  try {
    server.port = await server.waitForPort();
  } catch (err) {
    await server.close().catch(() => {});
    throw new Error(`${err.message}\n--- server output ---\n${server.logTail()}`);
  }
  server.url = `http://127.0.0.1:${server.port}`;
  return server;
}

class Server {
  constructor({ child, dataDir, database, adminPassword, options }) {
    this.child = child;
    this.dataDir = dataDir;
    this.database = database;
    this.adminPassword = adminPassword;
    this.options = options;
    this.name = options.name ?? "kefu";
    this.lines = [];
    this.sockets = new Set();
    this.ownsStorage = !options.dataDir;
    this.exit = new Promise((resolve) => {
      child.on("exit", (code, signal) => resolve({ code, signal }));
      child.on("error", (error) => resolve({ code: null, signal: null, error }));
    });
    this.exited = false;
    this.exit.then(() => (this.exited = true));
    for (const [name, stream] of [["stdout", child.stdout], ["stderr", child.stderr]]) {
      let partial = "";
      stream.setEncoding("utf8");
      stream.on("data", (chunk) => {
        const parts = (partial + chunk).split("\n");
        partial = parts.pop();
        for (const line of parts) this.#record(name, line);
      });
      stream.on("end", () => partial && this.#record(name, partial));
    }
  }

  #record(stream, line) {
    if (process.env.KEFU_E2E_ECHO) process.stderr.write(`[kefu ${stream}] ${line}\n`);
    this.lines.push(`${stream}: ${line}`);
    if (this.lines.length > LOG_LINES_KEPT) this.lines.shift();
    this.child.emit("kefu-line", line);
  }

  waitForPort() {
    return new Promise((resolve, reject) => {
      const pattern = /listening on http:\/\/127\.0\.0\.1:(\d+)/;
      const already = this.lines.map((l) => l.match(pattern)).find(Boolean);
      if (already) return resolve(Number(already[1]));
      const onLine = (line) => {
        const m = line.match(pattern);
        if (m) {
          cleanup();
          resolve(Number(m[1]));
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(`kefu did not print "listening on http://127.0.0.1:PORT" within ${STARTUP_TIMEOUT_MS} ms`));
      }, STARTUP_TIMEOUT_MS);
      const cleanup = () => {
        clearTimeout(timer);
        this.child.off("kefu-line", onLine);
      };
      this.child.on("kefu-line", onLine);
      this.exit.then(({ code, signal, error }) => {
        cleanup();
        reject(new Error(`kefu exited before listening (code ${code}, signal ${signal}${error ? `, ${error.message}` : ""})`));
      });
    });
  }

  logTail(lines = 60) {
    return this.lines.slice(-lines).join("\n");
  }

  /** Closes this server's client sockets, sends SIGTERM and returns the exit code (null if killed). */
  async stop() {
    const hadClients = this.sockets.size > 0;
    for (const socket of this.sockets) socket.disconnect();
    this.sockets.clear();
    // Let the clients' close packets arrive first: a polling session caught half-closed by the
    // shutdown is what shutdown.test.mjs checks, not what every other test is about.
    if (hadClients && !this.exited) await new Promise((resolve) => setTimeout(resolve, 150));
    if (!this.exited) this.child.kill("SIGTERM");
    let timer;
    const timeout = new Promise((resolve) => (timer = setTimeout(() => resolve("timeout"), SHUTDOWN_TIMEOUT_MS)));
    const result = await Promise.race([this.exit, timeout]);
    clearTimeout(timer);
    if (result === "timeout") {
      this.child.kill("SIGKILL");
      await this.exit;
      throw new Error(`kefu did not exit within ${SHUTDOWN_TIMEOUT_MS} ms of SIGTERM\n${this.logTail()}`);
    }
    return result.code;
  }

  /** Stops the server (SIGTERM must end it with exit code 0) and starts it again on the same storage. */
  async restart(extra = {}) {
    const code = await this.stop();
    liveServers.delete(this);
    if (code !== 0) throw new Error(`kefu exited with code ${code} on SIGTERM\n${this.logTail()}`);
    const next = await startServer({
      ...this.options,
      ...extra,
      dataDir: this.dataDir,
      database: this.database,
      adminPassword: this.adminPassword,
    });
    next.ownsStorage = this.ownsStorage;
    this.ownsStorage = false;
    return next;
  }

  /** Kills the server with SIGKILL, as a crash would, and removes its storage like close(). */
  async kill() {
    if (!liveServers.has(this)) return;
    liveServers.delete(this);
    this.sockets.clear();
    if (!this.exited) this.child.kill("SIGKILL");
    await this.exit;
    if (this.ownsStorage) {
      await rm(this.dataDir, { recursive: true, force: true });
      if (!this.options.sharedDatabase) await this.database.drop().catch((err) => console.error(`could not drop ${this.database.name}: ${err.message}`));
    }
  }

  /** Stops the server, checks it exited with 0, and removes its data dir and (unless shared) database. */
  async close() {
    if (!liveServers.has(this)) return;
    liveServers.delete(this);
    let code;
    try {
      code = await this.stop();
    } finally {
      if (this.ownsStorage) {
        await rm(this.dataDir, { recursive: true, force: true });
        if (!this.options.sharedDatabase) await this.database.drop().catch((err) => console.error(`could not drop ${this.database.name}: ${err.message}`));
      }
    }
    if (code !== 0 && this.port !== undefined) {
      throw new Error(`kefu exited with code ${code} on SIGTERM (expected 0)\n${this.logTail()}`);
    }
  }
}

process.on("exit", () => {
  for (const server of liveServers) server.child.kill("SIGKILL");
});
