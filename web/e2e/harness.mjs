// Browser-test harness: the real kefu binary on port 0 with a fresh data dir, the built UI (web/dist),
// a "shop" page on another origin that embeds widget.js, and Debian's Chromium driven by playwright-core.
//
// When the server does not serve this very web/dist (a release binary embeds dist/ when it is built,
// so one built before the last `npm run build` serves an older UI), a small static server serves dist/
// the way the server does (/X -> dist/X, dist/X.html, else dist/index.html; X.br or X.gz in place of
// X when the browser accepts it) and proxies /api, /socket.io and /healthz to it, WebSockets included.
import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readdir, readFile, rm, stat } from "node:fs/promises";
import http from "node:http";
import net from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";

const here = path.dirname(fileURLToPath(import.meta.url));
export const webRoot = path.resolve(here, "..");
export const distDir = path.join(webRoot, "dist");
export const screenshotDir = path.join(here, "screenshots");
const repoRoot = path.resolve(webRoot, "..");

export const KEFU_BIN = process.env.KEFU_BIN
  ? path.resolve(process.cwd(), process.env.KEFU_BIN)
  : path.join(repoRoot, "target", "debug", "kefu");
export const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";

const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
];

// ---- the kefu server ----

/** Runs `kefu serve` on `listen` with `dataDir`; resolves with the child and its URL once it listens. */
async function spawnKefu(listen, dataDir, adminPassword, log, extraEnv = {}) {
  const child = spawn(KEFU_BIN, ["serve", "--listen", listen, "--data-dir", dataDir], {
    // Every browser comes from 127.0.0.1: the per-address limits are off.
    env: {
      ...process.env,
      ...extraEnv,
      KEFU_ADMIN_PASSWORD: adminPassword,
      KEFU_LOG: "warn",
      KEFU_VISITOR_RATE_PER_MINUTE: "0",
      KEFU_HANDSHAKE_RATE_LIMIT: "0",
      KEFU_LOGIN_FAILURES_PER_MINUTE: "0",
    },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const keep = (chunk) => {
    log.push(...chunk.toString().split("\n").filter(Boolean));
    if (log.length > 300) log.splice(0, log.length - 300);
  };
  child.stderr.on("data", keep);
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`kefu did not start:\n${log.join("\n")}`)), 30_000);
    let buf = "";
    child.stdout.on("data", (chunk) => {
      keep(chunk);
      buf += chunk.toString();
      const m = /listening on (http:\/\/[^\s]+)/.exec(buf);
      if (m) {
        clearTimeout(timer);
        resolve(m[1].replace(/\/$/, ""));
      }
    });
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`kefu exited with ${code}:\n${log.join("\n")}`));
    });
  });
  return { child, url };
}

/** SIGTERM, as a service manager stops it; SIGKILL if it has not exited 10 s later. */
async function terminate(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((r) => child.once("exit", r));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  await exited;
  clearTimeout(timer);
}

/**
 * kefu on a free port with a fresh data directory. `stop()` and `start()` stop it (SIGTERM) and start
 * it again on the same port and data directory, as a restart in production does. `env` adds settings
 * (`KEFU_SMTP_URL` of an `smtpSink()`, for one).
 */
export async function startKefu({ env = {} } = {}) {
  if (!existsSync(KEFU_BIN)) throw new Error(`kefu binary not found at ${KEFU_BIN}; build it or set KEFU_BIN`);
  const dataDir = await mkdtemp(path.join(tmpdir(), "kefu-web-e2e-"));
  const adminPassword = `pw-${randomBytes(12).toString("hex")}`;
  const log = [];
  let { child, url } = await spawnKefu("127.0.0.1:0", dataDir, adminPassword, log, env);
  const listen = new URL(url).host;
  return {
    url,
    adminPassword,
    log,
    async stop() {
      await terminate(child);
    },
    async start() {
      if (child.exitCode === null && child.signalCode === null) throw new Error("kefu is already running");
      // The port was just released; a few tries in case the system has not let go of it yet.
      for (let attempt = 1; ; attempt++) {
        try {
          ({ child } = await spawnKefu(listen, dataDir, adminPassword, log, env));
          return;
        } catch (e) {
          if (attempt >= 5) throw e;
          await new Promise((r) => setTimeout(r, 300));
        }
      }
    },
    async close() {
      await terminate(child);
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}

async function json(res) {
  const body = await res.json().catch(() => null);
  if (!res.ok) throw new Error(`${res.status} ${JSON.stringify(body)}`);
  return body;
}

export async function adminToken(kefu) {
  const res = await fetch(`${kefu.url}/api/login`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ username: "admin", password: kefu.adminPassword }),
  });
  return (await json(res)).token;
}

export async function createAgent(kefu, username, displayName) {
  const token = await adminToken(kefu);
  const password = `pw-${randomBytes(8).toString("hex")}`;
  const res = await fetch(`${kefu.url}/api/agents`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({ username, password, displayName }),
  });
  const { user } = await json(res);
  return { ...user, password };
}

// ---- serving web/dist ----

const TYPES = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".json": "application/json",
};
const PROXIED = /^\/(api|socket\.io|healthz|readyz)(\/|$|\?)/;

async function isFile(p) {
  try {
    return (await stat(p)).isFile();
  } catch {
    return false;
  }
}

/** The precompressed variants the build writes beside a file, best first, by content coding. */
const VARIANTS = [
  ["br", ".br"],
  ["gzip", ".gz"],
];
const isVariant = (name) => VARIANTS.some(([, ext]) => name.endsWith(ext));

/** Whether an Accept-Encoding header takes `coding` (a q of 0 refuses it). */
function accepts(header, coding) {
  return String(header ?? "")
    .split(",")
    .some((item) => {
      const [name, ...params] = item.split(";").map((x) => x.trim());
      const refused = params.some((p) => /^q=0(\.0*)?$/.test(p));
      return (name.toLowerCase() === coding || name === "*") && !refused;
    });
}

/**
 * The file the server serves for a path: dist/X, else dist/X.html, else dist/index.html. A
 * precompressed variant is never served by its own name.
 */
async function resolveDist(urlPath, dir = distDir) {
  const clean = path.posix.normalize(decodeURIComponent(urlPath)).replace(/^(\.\.(\/|$))+/, "");
  const rel = clean === "/" ? "/index.html" : clean;
  const direct = path.join(dir, rel);
  if (!direct.startsWith(dir) || isVariant(direct)) return path.join(dir, "index.html");
  if (await isFile(direct)) return direct;
  if (await isFile(`${direct}.html`)) return `${direct}.html`;
  return path.join(dir, "index.html");
}

function listen(server) {
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server.address().port)));
}

/**
 * dist/ plus a proxy to kefu for the API and Socket.IO (HTTP and WebSocket). `dist` serves another
 * build (e.g. an older one, to compare); `precompressed: false` never sends the .br/.gz variants.
 */
export async function startUiProxy(kefuUrl, { dist = distDir, precompressed = true } = {}) {
  const target = new URL(kefuUrl);
  const sockets = new Set();
  let blocked = false;
  const server = http.createServer(async (req, res) => {
    if (PROXIED.test(req.url)) {
      if (blocked) {
        res.writeHead(503);
        res.end();
        return;
      }
      const up = http.request(
        { host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers },
        (r) => {
          res.writeHead(r.statusCode ?? 502, r.headers);
          r.pipe(res);
        },
      );
      up.on("error", () => {
        if (!res.headersSent) res.writeHead(502);
        res.end();
      });
      req.pipe(up);
      return;
    }
    const file = await resolveDist(new URL(req.url, "http://x").pathname, dist);
    try {
      const headers = {
        "content-type": TYPES[path.extname(file)] ?? "application/octet-stream",
        // As the server: hashed assets never change; pages and widget.js are revalidated.
        "cache-control": path.relative(dist, file).startsWith(`assets${path.sep}`) ? "public, max-age=31536000, immutable" : "no-cache",
      };
      let body = await readFile(file);
      const variants = [];
      for (const [coding, ext] of VARIANTS) if (await isFile(`${file}${ext}`)) variants.push([coding, ext]);
      if (variants.length > 0) headers.vary = "accept-encoding";
      const chosen = precompressed ? variants.find(([coding]) => accepts(req.headers["accept-encoding"], coding)) : undefined;
      if (chosen) {
        body = await readFile(`${file}${chosen[1]}`);
        headers["content-encoding"] = chosen[0];
      }
      headers["content-length"] = body.length;
      res.writeHead(200, headers);
      res.end(body);
    } catch {
      res.writeHead(404);
      res.end();
    }
  });
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });
  server.on("upgrade", (req, client, head) => {
    if (blocked) {
      client.destroy();
      return;
    }
    const up = net.connect(Number(target.port), target.hostname, () => {
      const lines = [`${req.method} ${req.url} HTTP/${req.httpVersion}`];
      for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
      up.write(`${lines.join("\r\n")}\r\n\r\n`);
      if (head?.length) up.write(head);
      up.pipe(client);
      client.pipe(up);
    });
    sockets.add(up);
    up.on("close", () => sockets.delete(up));
    const end = () => {
      up.destroy();
      client.destroy();
    };
    up.on("error", end);
    client.on("error", end);
  });
  const port = await listen(server);
  return {
    url: `http://127.0.0.1:${port}`,
    /** Cuts every connection and refuses API and Socket.IO traffic until unblocked: a network outage. */
    setBlocked(value) {
      blocked = value;
      if (value) for (const s of sockets) s.destroy();
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise((r) => server.close(r));
    },
  };
}

/** Whether the server answers every file of dist/ with the same bytes (asked for unencoded). */
async function servesDist(baseUrl) {
  const files = (await readdir(distDir, { recursive: true, withFileTypes: true })).filter((e) => e.isFile() && !isVariant(e.name));
  const same = await Promise.all(
    files.map(async (e) => {
      const file = path.join(e.parentPath, e.name);
      const rel = path.relative(distDir, file).split(path.sep).join("/");
      const res = await fetch(`${baseUrl}/${rel}`, { headers: { "accept-encoding": "identity" } });
      if (!res.ok) return false;
      return Buffer.from(await res.arrayBuffer()).equals(await readFile(file));
    }),
  );
  return same.every(Boolean);
}

/**
 * The kefu server itself when it serves this very dist/, else a proxy in front of it (always the proxy
 * with KEFU_E2E_PROXY=1). The proxy outlives restarts of kefu: it connects to it per request.
 */
export async function uiFor(kefu) {
  try {
    if (process.env.KEFU_E2E_PROXY !== "1" && (await servesDist(kefu.url))) {
      return { url: kefu.url, proxied: false, close: async () => {} };
    }
  } catch {
    // Fall through to the proxy.
  }
  return { ...(await startUiProxy(kefu.url)), proxied: true };
}

/** A shop page on its own origin that embeds the widget, with CSS that would break a careless one. */
export async function startShop(uiUrl) {
  const page = `<!doctype html>
<html><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Hostile shop</title>
<style>
  * { display: block !important; font-size: 40px !important; color: #c00 !important; line-height: 3 !important;
      box-sizing: content-box !important; margin: 7px !important; border: 3px dashed #0a0 !important; }
  head, script, style, title, meta { display: none !important; }
  div, span, button, iframe { position: static !important; width: 50px !important; opacity: 0.5 !important; }
  iframe { display: none !important; }
  body { background: repeating-linear-gradient(45deg, #fffbe6, #fffbe6 20px, #ffe7e7 20px, #ffe7e7 40px) !important; }
</style></head>
<body>
  <h1>Hostile Shop</h1>
  <p>Our styles try hard to break any embedded widget.</p>
  <script src="${uiUrl}/widget.js" data-title="Help desk" data-color="#0f766e" async></script>
</body></html>`;
  const server = http.createServer((req, res) => {
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end(page);
  });
  const port = await listen(server);
  return { url: `http://127.0.0.1:${port}/`, close: () => new Promise((r) => server.close(r)) };
}

// ---- the browser ----

export async function launchBrowser() {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, headless: true });
}

export async function newContext(browser, options = {}) {
  return browser.newContext({ locale: "en-US", viewport: { width: 1280, height: 800 }, ...options });
}

export async function screenshot(page, name, options = {}) {
  await mkdir(screenshotDir, { recursive: true });
  await page.screenshot({ path: path.join(screenshotDir, `${name}.png`), ...options });
}

/** The session a page keeps in localStorage (slot "visitor", "console" or "admin"). */
export async function storedSession(page, slot) {
  return JSON.parse(await page.evaluate((k) => window.localStorage.getItem(k), `kefu.session.${slot}`));
}

/** Signs in to the console (or the admin page) through the form. */
export async function signIn(page, baseUrl, pathName, username, password) {
  await page.goto(`${baseUrl}${pathName}`);
  await page.getByLabel("Username").fill(username);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
}

/**
 * Whether the server tells visitors what happens when nobody answers (`GET /api/availability`,
 * issue 15). With it, a visitor who arrives while no agent is available gets the offline form
 * instead of the composer and a place in line.
 */
export async function knowsAvailability(kefu) {
  const res = await fetch(`${kefu.url}/api/availability`);
  await res.body?.cancel();
  return res.ok;
}

/** Leaves a message through the chat's offline form (asking for name and e-mail) and waits for the confirmation. */
export async function leaveOfflineMessage(page, content, { name = "Ann Lee", email = "ann@example.com" } = {}) {
  const form = page.getByTestId("offline-form");
  await form.waitFor();
  if (await form.getByTestId("offline-name").count()) await form.getByTestId("offline-name").fill(name);
  if (await form.getByTestId("offline-email").count()) await form.getByTestId("offline-email").fill(email);
  await form.getByTestId("offline-message").fill(content);
  await form.getByTestId("offline-submit").click();
  await page.getByTestId("offline-sent").waitFor();
}

// ---- a mailbox: the smallest SMTP server kefu's mails can go to ----

/** Decodes one MIME part's body by its Content-Transfer-Encoding. */
function decodeBody(headers, body) {
  const encoding = /^content-transfer-encoding:\s*(\S+)/im.exec(headers)?.[1]?.toLowerCase();
  if (encoding === "base64") return Buffer.from(body.replace(/\s+/g, ""), "base64").toString("utf8");
  if (encoding === "quoted-printable") {
    const bytes = body.replace(/=\r?\n/g, "").replace(/=([0-9A-F]{2})/gi, (_, h) => String.fromCharCode(parseInt(h, 16)));
    return Buffer.from(bytes, "latin1").toString("utf8");
  }
  return body;
}

/** The text of a mail (every text part, decoded), from its raw form. */
function mailText(raw) {
  const split = (s) => {
    const i = s.search(/\r?\n\r?\n/);
    return i < 0 ? [s, ""] : [s.slice(0, i), s.slice(i).replace(/^\r?\n\r?\n/, "")];
  };
  const [headers, body] = split(raw);
  const boundary = /boundary="?([^";\r\n]+)"?/i.exec(headers)?.[1];
  if (!boundary) return decodeBody(headers, body);
  return body
    .split(`--${boundary}`)
    .slice(1)
    .filter((part) => !part.startsWith("--"))
    .map((part) => {
      const [h, b] = split(part.replace(/^\r?\n/, ""));
      return /^content-type:\s*text\//im.test(h) ? decodeBody(h, b) : "";
    })
    .join("\n");
}

/**
 * An SMTP server on a free port that keeps every mail kefu sends (no TLS, no auth: start kefu with
 * `env: sink.env`). `waitFor(pred)` resolves with the first mail `{ from, to, subject, raw, text }`
 * for which `pred` holds.
 */
export async function smtpSink() {
  const mails = [];
  const waiters = new Set();
  const sockets = new Set();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.setEncoding("latin1");
    let buf = "";
    let data = null;
    let envelope = { from: "", to: [] };
    const reply = (line) => socket.write(`${line}\r\n`);
    reply("220 kefu-e2e ESMTP");
    socket.on("data", (chunk) => {
      buf += chunk;
      for (;;) {
        if (data !== null) {
          const end = buf.indexOf("\r\n.\r\n");
          if (end < 0) return;
          const raw = Buffer.from((data + buf.slice(0, end + 2)).replace(/^\.\./gm, "."), "latin1").toString("utf8");
          buf = buf.slice(end + 5);
          data = null;
          const subject = /^subject:\s*(.*)$/im.exec(raw)?.[1] ?? "";
          const mail = { ...envelope, subject, raw, text: mailText(raw) };
          envelope = { from: "", to: [] };
          mails.push(mail);
          for (const w of waiters) w(mail);
          reply("250 OK queued");
          continue;
        }
        const nl = buf.indexOf("\r\n");
        if (nl < 0) return;
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 2);
        const verb = line.slice(0, 4).toUpperCase();
        const address = /<(.*)>/.exec(line)?.[1] ?? "";
        if (verb === "EHLO") {
          socket.write("250-kefu-e2e\r\n250-8BITMIME\r\n250 SMTPUTF8\r\n");
        } else if (verb === "HELO") {
          reply("250 kefu-e2e");
        } else if (verb === "MAIL") {
          envelope.from = address;
          reply("250 OK");
        } else if (verb === "RCPT") {
          envelope.to.push(address);
          reply("250 OK");
        } else if (verb === "DATA") {
          data = "";
          reply("354 End data with <CR><LF>.<CR><LF>");
        } else if (verb === "QUIT") {
          reply("221 Bye");
          socket.end();
        } else {
          if (verb === "RSET") envelope = { from: "", to: [] };
          reply("250 OK");
        }
      }
    });
    socket.on("error", () => undefined);
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address();
  return {
    mails,
    env: {
      KEFU_SMTP_URL: `smtp://127.0.0.1:${port}`,
      KEFU_SMTP_FROM: "Acme Shop <support@shop.example>",
      KEFU_MAIL_EVERY_MS: "200",
    },
    waitFor(pred, timeout = 15_000) {
      const found = mails.find(pred);
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => {
          waiters.delete(w);
          reject(new Error(`no such mail within ${timeout} ms; got: ${mails.map((m) => `${m.to} "${m.subject}"`).join(", ") || "none"}`));
        }, timeout);
        const w = (m) => {
          if (!pred(m)) return;
          clearTimeout(timer);
          waiters.delete(w);
          resolve(m);
        };
        waiters.add(w);
      });
    },
    close() {
      for (const s of sockets) s.destroy();
      return new Promise((r) => server.close(r));
    },
  };
}
