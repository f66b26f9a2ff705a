// Browser tests of what the shop's page views cost: the loader (widget.js) loads the chat only when
// the bubble is first opened, except for a returning visitor with an open conversation, whose chat
// loads in the background once the page is idle so that the closed bubble shows unread replies. When
// that conversation ends, the next page views load nothing again.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { createAgent, knowsAvailability, launchBrowser, newContext, screenshot, signIn, startKefu, startShop, uiFor } from "./harness.mjs";

const FLAG = "kefu.widget.openConversation";

let kefu;
let ui;
let shop;
let browser;

before(async () => {
  kefu = await startKefu();
  ui = await uiFor(kefu);
  shop = await startShop(ui.url);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await shop?.close();
  await ui?.close();
  await kefu?.close();
});

/** The paths asked of the kefu server by a page (and its frames), in order. */
function kefuRequests(page) {
  const paths = [];
  const origin = new URL(ui.url).origin;
  page.on("request", (r) => {
    const u = new URL(r.url());
    if (u.origin === origin) paths.push(u.pathname);
  });
  return paths;
}
const chatRequests = (paths) => paths.filter((p) => p === "/chat" || p.startsWith("/assets/") || p.startsWith("/socket.io") || p.startsWith("/api/"));

/**
 * Resolves once the page has had an idle moment after its load, twice: a background load of the chat
 * (asked for at the page's load, when idle) has begun by then.
 */
async function pageWentIdle(page) {
  for (let i = 0; i < 2; i++) {
    await page.evaluate(() => new Promise((r) => requestIdleCallback(() => r(), { timeout: 5000 })));
  }
}

const widgetState = (page) =>
  page.evaluate(() => {
    const el = document.querySelector("kefu-widget");
    return { open: el?.getAttribute("data-open"), unread: el?.getAttribute("data-unread"), frame: !!el?.shadowRoot?.querySelector("iframe") };
  });

describe("loading the chat", () => {
  it("a first page view asks nothing of the chat until the bubble is opened", async () => {
    const ctx = await newContext(browser);
    const page = await ctx.newPage();
    const paths = kefuRequests(page);
    // A server that knows nobody is available offers the offline form instead of the composer
    // (issue 15): an agent is online here, as in a shop's opening hours.
    let agentCtx = null;
    if (await knowsAvailability(kefu)) {
      const lena = await createAgent(kefu, "lena", "Lena Vogel");
      agentCtx = await newContext(browser);
      await signIn(await agentCtx.newPage(), ui.url, "/console", "lena", lena.password);
      for (let i = 0; i < 40 && (await (await fetch(`${kefu.url}/api/availability`)).json()).state !== "open"; i++) {
        await new Promise((r) => setTimeout(r, 250));
      }
    }
    try {
      await page.goto(shop.url);
      const bubble = page.locator("kefu-widget").getByRole("button", { name: "Help desk" });
      await bubble.waitFor();
      await pageWentIdle(page);
      assert.deepEqual(paths, ["/widget.js"], "only the loader");
      assert.deepEqual(await widgetState(page), { open: "false", unread: "0", frame: false });

      // Opened: the chat loads, and works.
      await bubble.click();
      const chat = page.frameLocator("kefu-widget iframe");
      await chat.getByTestId("composer").waitFor();
      assert.ok(paths.includes("/chat"), `the chat page: ${paths.join(" ")}`);
      assert.ok(paths.some((p) => p.startsWith("/assets/")), "its assets");
      // A visitor who only opened the chat has no conversation: the page remembers nothing.
      await chat.getByTestId("messages").waitFor({ state: "attached" });
      await chat.getByTestId("welcome").waitFor();
      await page.waitForTimeout(500);
      assert.deepEqual(await page.evaluate(() => Object.keys(window.localStorage)), []);
      // Its first message starts one: the page remembers that (and only that; the visitor's token
      // stays in the chat's own origin).
      await chat.getByTestId("composer").fill("Do you ship abroad?");
      await chat.getByTestId("composer").press("Enter");
      await page.waitForFunction((k) => window.localStorage.getItem(k) !== null, FLAG);
      assert.equal(await page.evaluate((k) => window.localStorage.getItem(k), FLAG), new URL(ui.url).origin);
      const keys = await page.evaluate(() => Object.keys(window.localStorage));
      assert.deepEqual(keys, [FLAG]);
    } finally {
      await ctx.close();
      await agentCtx?.close();
    }
  });

  it("a returning visitor with an open conversation sees unread replies on the closed bubble; once it ends, nothing loads", async () => {
    const nadia = await createAgent(kefu, "nadia", "Nadia Rahman");
    const agentCtx = await newContext(browser);
    const agent = await agentCtx.newPage();
    const ctx = await newContext(browser);
    try {
      // (The visitor of the test before wrote to Lena, who was online: that conversation stays hers
      // while she is away, KEFU_AGENT_OFFLINE_REQUEUE_AFTER, so Nadia's list may well be empty.)
      await signIn(agent, ui.url, "/console", "nadia", nadia.password);
      await agent.getByTestId("customer-list").waitFor({ state: "attached" });

      // First visit: the visitor opens the chat, writes, and leaves the page.
      const first = await ctx.newPage();
      await first.goto(shop.url);
      await first.locator("kefu-widget").getByRole("button", { name: "Help desk" }).click();
      const chat = first.frameLocator("kefu-widget iframe");
      await chat.getByTestId("composer").fill("Where is my order 5521?");
      await chat.getByTestId("composer").press("Enter");
      await chat.locator('[data-testid="message"][data-status="sent"]').filter({ hasText: "order 5521" }).waitFor();
      await first.waitForFunction((k) => window.localStorage.getItem(k) !== null, FLAG);
      await first.close();

      const customer = agent.getByTestId("customer").filter({ hasText: "order 5521" });
      await customer.click();
      await agent.getByTestId("message").filter({ hasText: "order 5521" }).waitFor();

      // The next page view: the chat loads in the background, the bubble stays closed.
      const page = await ctx.newPage();
      const paths = kefuRequests(page);
      await page.goto(shop.url);
      await page.waitForFunction(() => !!document.querySelector("kefu-widget")?.shadowRoot?.querySelector("iframe"));
      // The chat has caught up (the visitor's message is in it), the panel still closed.
      await page.frameLocator("kefu-widget iframe").getByTestId("message").filter({ hasText: "order 5521" }).waitFor({ state: "attached" });
      assert.ok(paths.includes("/chat"), `the chat loaded in the background: ${paths.join(" ")}`);

      // The agent answers: the closed bubble says so.
      await agent.getByTestId("composer").fill("It ships today, with tracking by e-mail.");
      await agent.getByTestId("composer").press("Enter");
      await page.waitForFunction(() => document.querySelector("kefu-widget")?.getAttribute("data-unread") === "1", undefined, { timeout: 15_000 });
      const badge = page.locator("kefu-widget [data-kefu-badge]");
      assert.equal(await badge.textContent(), "1");
      assert.ok(await badge.isVisible());
      assert.equal((await widgetState(page)).open, "false");
      await page.locator("kefu-widget").getByRole("button", { name: "Help desk (1)" }).waitFor();
      await screenshot(page, "widget-returning-unread-badge");

      // The agent resolves the conversation: the chat tells the page, which forgets it.
      await agent.getByTestId("resolve").click();
      await page.waitForFunction((k) => window.localStorage.getItem(k) === null, FLAG, { timeout: 15_000 });
      await page.close();

      // The page view after that loads nothing of the chat again.
      const later = await ctx.newPage();
      const laterPaths = kefuRequests(later);
      await later.goto(shop.url);
      await later.locator("kefu-widget").getByRole("button", { name: "Help desk" }).waitFor();
      await pageWentIdle(later);
      assert.deepEqual(chatRequests(laterPaths), []);
      assert.equal((await widgetState(later)).frame, false);
    } finally {
      await ctx.close();
      await agentCtx.close();
    }
  });
});
