// What one page view of a shop embedding the widget costs, measured in Chromium: the requests to the
// kefu server and the bytes they transferred (headers and encoded bodies, as DevTools counts them),
// each view in a fresh browser context (an empty cache). Not a test: it prints the table of
// web/README.md.
//
//   npm run build && KEFU_BIN=/path/to/kefu node e2e/page-weight.mjs [--dist <dir>] [--label <name>]
//
// `--dist` measures another build, e.g. the one before the chat was loaded on demand:
//   git archive a2e2627 web/dist | tar -x -C /tmp/before && node e2e/page-weight.mjs --dist /tmp/before/web/dist
// Each view is measured twice: with the .br/.gz files sent when the browser accepts them (as the
// server does), and without (every file as it is).
import { parseArgs } from "node:util";
import { distDir, launchBrowser, newContext, startKefu, startShop, startUiProxy } from "./harness.mjs";

const { values } = parseArgs({ options: { dist: { type: "string" }, label: { type: "string" } } });
const dist = values.dist ?? distDir;

/** Counts what `page` (and its frames) asked of `origin` until `settle()` says it is done. */
function meter(page, origin) {
  const rows = [];
  let pending = 0;
  let frames = 0;
  page.on("request", (r) => {
    if (new URL(r.url()).origin === origin) pending++;
  });
  const done = async (r) => {
    if (new URL(r.url()).origin !== origin) return;
    const s = await r.sizes().catch(() => null);
    rows.push({ path: new URL(r.url()).pathname, bytes: s ? s.responseHeadersSize + s.responseBodySize : 0 });
    pending--;
  };
  page.on("requestfinished", done);
  page.on("requestfailed", (r) => {
    if (new URL(r.url()).origin === origin) pending--;
  });
  page.on("websocket", (ws) => ws.on("framereceived", (f) => (frames += typeof f.payload === "string" ? f.payload.length : f.payload.byteLength)));
  return {
    rows,
    /** Waits until nothing has been in flight for `quietMs` (long-polls aside). */
    async settle(quietMs = 1500) {
      let since = Date.now();
      for (;;) {
        await new Promise((r) => setTimeout(r, 100));
        if (pending > 0) since = Date.now();
        else if (Date.now() - since >= quietMs) return;
      }
    },
    get wsBytes() {
      return frames;
    },
  };
}

async function idle(page) {
  for (let i = 0; i < 2; i++) await page.evaluate(() => new Promise((r) => requestIdleCallback(() => r(), { timeout: 5000 })));
}

function summary(m) {
  const isStatic = (p) => !p.startsWith("/api/") && !p.startsWith("/socket.io");
  const sum = (rows) => rows.reduce((n, r) => n + r.bytes, 0);
  const st = m.rows.filter((r) => isStatic(r.path));
  return {
    requests: m.rows.length,
    bytes: sum(m.rows),
    staticRequests: st.length,
    staticBytes: sum(st),
    wsBytes: m.wsBytes,
    paths: m.rows.map((r) => r.path),
  };
}

async function measure(browser, shopUrl, origin) {
  const out = {};
  const bubbleOf = (page) => page.locator("kefu-widget").getByRole("button", { name: /Help desk/ });

  // 1. A first page view.
  let ctx = await newContext(browser);
  let page = await ctx.newPage();
  let m = meter(page, origin);
  await page.goto(shopUrl);
  await bubbleOf(page).waitFor();
  await idle(page);
  await m.settle();
  out.first = summary(m);

  // 2. The same visitor opens the chat (what it costs on top of 1.), and writes: now it has an open
  //    conversation.
  m.rows.length = 0;
  await bubbleOf(page).click();
  const chat = page.frameLocator("kefu-widget iframe");
  await chat.getByTestId("composer").waitFor();
  await m.settle();
  out.opened = summary(m);
  await chat.getByTestId("composer").fill("Hello");
  await chat.getByTestId("composer").press("Enter");
  await chat.locator('[data-testid="message"][data-status="sent"]').waitFor();
  const state = await ctx.storageState();
  await ctx.close();

  // 3. Its next page view, with its storage but an empty cache.
  ctx = await newContext(browser, { storageState: state });
  page = await ctx.newPage();
  m = meter(page, origin);
  await page.goto(shopUrl);
  await bubbleOf(page).waitFor();
  await idle(page);
  await page.waitForFunction(() => !!document.querySelector("kefu-widget")?.shadowRoot?.querySelector("iframe"), undefined, { timeout: 10_000 }).catch(() => {});
  await m.settle();
  out.returning = summary(m);
  await ctx.close();
  return out;
}

const kefu = await startKefu();
const browser = await launchBrowser();
const results = {};
try {
  for (const precompressed of [false, true]) {
    const ui = await startUiProxy(kefu.url, { dist, precompressed });
    const shop = await startShop(ui.url);
    try {
      results[precompressed ? "compressed" : "identity"] = await measure(browser, shop.url, new URL(ui.url).origin);
    } finally {
      await shop.close();
      await ui.close();
    }
  }
} finally {
  await browser.close();
  await kefu.close();
}

const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
const label = values.label ?? dist;
console.log(`\n${label}\n`);
console.log("| page view | requests (static) | transferred, as is | transferred, br |");
console.log("|---|---|---|---|");
for (const [key, name] of [
  ["first", "first view"],
  ["returning", "returning visitor, open conversation"],
  ["opened", "opening the chat (on top of the first view)"],
]) {
  const a = results.identity[key];
  const b = results.compressed[key];
  console.log(`| ${name} | ${a.requests} (${a.staticRequests}) | ${kb(a.bytes)} (static ${kb(a.staticBytes)}) | ${kb(b.bytes)} (static ${kb(b.staticBytes)}) |`);
}
if (process.env.KEFU_WEIGHT_VERBOSE === "1") console.log(JSON.stringify(results, null, 2));
