// Browser tests of the built UI against the real server: a visitor and an agent chat both ways,
// typing and read receipts show, history survives reloads, content stays text, the embedded widget
// survives a hostile shop page, and the pages speak Chinese. Screenshots go to e2e/screenshots/.
// The admin page has its own file (admin.test.mjs).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import {
  createAgent,
  launchBrowser,
  newContext,
  screenshot,
  knowsAvailability,
  leaveOfflineMessage,
  signIn,
  startKefu,
  startShop,
  uiFor,
} from "./harness.mjs";

const MOBILE = { viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true };
const XSS = "<img src=x onerror=alert(1)>";

let kefu;
let ui;
let browser;

before(async () => {
  kefu = await startKefu();
  ui = await uiFor(kefu);
  browser = await launchBrowser();
  if (ui.proxied) console.log(`# serving web/dist from a local proxy in front of ${kefu.url}`);
});

after(async () => {
  await browser?.close();
  await ui?.close();
  await kefu?.close();
});

/** Fails the test if the page ever opens a JavaScript dialog (an XSS payload that ran). */
function forbidDialogs(page, sink) {
  page.on("dialog", (d) => {
    sink.push(d.message());
    void d.dismiss();
  });
}

const messageWith = (page, text) => page.getByTestId("message").filter({ hasText: text }).last();

async function waitForStatus(page, text, status) {
  await page.waitForFunction(
    ([t, s]) =>
      [...document.querySelectorAll('[data-testid="message"]')].some(
        (el) => el.querySelector('[data-testid="message-content"]')?.textContent === t && el.getAttribute("data-status") === s,
      ),
    [text, status],
    { timeout: 15_000 },
  );
}

async function send(page, text) {
  const box = page.getByTestId("composer");
  await box.fill(text);
  await box.press("Enter");
}

describe("visitor and agent", () => {
  it("chat both ways with typing, read receipts, history and text-only content", async () => {
    const alice = await createAgent(kefu, "alice", "Alice Chen");
    const dialogs = [];

    // The visitor arrives while no agent is online: a welcome, and the composer. Its first message
    // starts the conversation, which waits in line: the chat says so and still takes messages.
    const visitorCtx = await newContext(browser, MOBILE);
    const visitor = await visitorCtx.newPage();
    forbidDialogs(visitor, dialogs);
    await visitor.goto(`${ui.url}/chat`);
    await visitor.getByTestId("messages").waitFor({ state: "attached" });
    assert.equal(await visitor.getByTestId("queued").count(), 0);
    if (await knowsAvailability(kefu)) {
      // A server that knows nobody is available says so and offers the offline form (issue 15): the
      // message waits for the next agent, without a place in line that nobody would honour.
      await visitor.getByTestId("availability").filter({ hasText: "Nobody is available right now" }).waitFor();
      await leaveOfflineMessage(visitor, "Hello, I need help with my order");
      await waitForStatus(visitor, "Hello, I need help with my order", "sent");
      await screenshot(visitor, "chat-left-offline-mobile");
    } else {
      await visitor.getByTestId("welcome").waitFor();
      await send(visitor, "Hello, I need help with my order");
      await waitForStatus(visitor, "Hello, I need help with my order", "sent");
      await visitor.getByTestId("queued").filter({ hasText: "You are number 1 in line" }).waitFor();
      await screenshot(visitor, "chat-queued-mobile");
    }

    // The agent signs in, takes the queued conversation, and the visitor sees who joined.
    const agentCtx = await newContext(browser);
    const agent = await agentCtx.newPage();
    forbidDialogs(agent, dialogs);
    await signIn(agent, ui.url, "/console", "alice", alice.password);
    const customer = agent.getByTestId("customer").first();
    await customer.waitFor();
    await customer.getByTestId("unread").filter({ hasText: "1" }).waitFor();
    await visitor.getByTestId("agent-state").filter({ hasText: "Alice Chen" }).waitFor();
    await visitor.getByTestId("queued").waitFor({ state: "detached" });

    // Opening the conversation marks it read; the visitor sees "read".
    await customer.click();
    await messageWith(agent, "Hello, I need help with my order").waitFor();
    await waitForStatus(visitor, "Hello, I need help with my order", "read");
    await customer.getByTestId("unread").waitFor({ state: "detached" });

    // Typing shows on the other side.
    await agent.getByTestId("composer").pressSequentially("Sure, what is", { delay: 20 });
    await visitor.getByTestId("typing").filter({ hasText: "Alice Chen is typing" }).waitFor();
    await agent.getByTestId("composer").pressSequentially(" the order number?", { delay: 5 });
    await agent.getByTestId("composer").press("Enter");
    await messageWith(visitor, "Sure, what is the order number?").waitFor();
    await visitor.getByTestId("typing").waitFor({ state: "detached" });
    // The visitor has the chat in front of them, so the reply is read at once.
    await waitForStatus(agent, "Sure, what is the order number?", "read");

    await visitor.getByTestId("composer").pressSequentially("It's", { delay: 20 });
    await agent.getByTestId("typing").waitFor();

    // Shift+Enter is a new line; Enter sends.
    await visitor.getByTestId("composer").fill("");
    await visitor.getByTestId("composer").pressSequentially("Line one");
    await visitor.getByTestId("composer").press("Shift+Enter");
    await visitor.getByTestId("composer").pressSequentially("Line two");
    await visitor.getByTestId("composer").press("Enter");
    await waitForStatus(visitor, "Line one\nLine two", "read");

    // Content is text, never HTML, on both sides.
    await send(visitor, XSS);
    await messageWith(agent, XSS).waitFor();
    for (const page of [visitor, agent]) {
      const content = await messageWith(page, XSS).getByTestId("message-content").textContent();
      assert.equal(content, XSS);
      assert.equal(await page.getByTestId("messages").locator("img").count(), 0);
    }
    const reply = "Order #4521 ships tomorrow. 明天发货";
    await send(agent, reply);
    await messageWith(visitor, "Order #4521 ships tomorrow").waitFor();
    await waitForStatus(agent, reply, "read");
    await screenshot(agent, "console-desktop");
    await screenshot(visitor, "chat-mobile");

    // The agent reloads: the conversation, its history, the list's preview and the read receipts come
    // back. The visitor wrote nothing after the reply: only the server's read position says "read".
    await agent.reload();
    await messageWith(agent, "Hello, I need help with my order").waitFor();
    await messageWith(agent, XSS).waitFor();
    assert.equal(await agent.getByTestId("peer-name").count(), 1);
    await agent.getByTestId("preview").filter({ hasText: "Order #4521 ships tomorrow" }).waitFor();
    await waitForStatus(agent, reply, "read");

    // The visitor reloads, and opens a second tab: the same conversation with its history.
    await visitor.reload();
    await messageWith(visitor, "Order #4521 ships tomorrow").waitFor();
    const second = await visitorCtx.newPage();
    await second.goto(`${ui.url}/chat`);
    await messageWith(second, "Hello, I need help with my order").waitFor();
    await send(second, "Sent from my other tab");
    await messageWith(visitor, "Sent from my other tab").waitFor();
    await messageWith(agent, "Sent from my other tab").waitFor();
    // The agent reads it; the visitor still sees "read" after a reload, with no reply after it.
    await waitForStatus(visitor, "Sent from my other tab", "read");
    await visitor.reload();
    await messageWith(visitor, "Sent from my other tab").waitFor();
    await waitForStatus(visitor, "Sent from my other tab", "read");

    // The console at phone width.
    await agent.setViewportSize({ width: 360, height: 740 });
    await screenshot(agent, "console-mobile-conversation");
    await agent.getByRole("button", { name: "Back to customers" }).click();
    await screenshot(agent, "console-mobile-list");

    assert.deepEqual(dialogs, []);

    // The agent leaves: the visitor is told, and can still write.
    await agentCtx.close();
    await visitor.getByTestId("agent-away").filter({ hasText: "Alice Chen is away" }).waitFor();
    await visitor.getByTestId("agent-state").filter({ hasText: "Offline" }).waitFor();
    await send(visitor, "I'll wait for your answer");
    await waitForStatus(visitor, "I'll wait for your answer", "sent");
    await screenshot(visitor, "chat-agent-away-mobile");
    await visitorCtx.close();
  });
});

describe("embedded widget", () => {
  it("works on a hostile shop page and shows an unread badge while closed", async () => {
    const bob = await createAgent(kefu, "bob", "Bob Li");
    const agentCtx = await newContext(browser);
    const agent = await agentCtx.newPage();
    await signIn(agent, ui.url, "/console", "bob", bob.password);
    await agent.getByText("No conversations yet").waitFor();

    const shop = await startShop(ui.url);
    const shopCtx = await newContext(browser);
    const page = await shopCtx.newPage();
    const dialogs = [];
    forbidDialogs(page, dialogs);
    try {
      await page.goto(shop.url);
      const bubble = page.locator("kefu-widget").getByRole("button", { name: "Help desk" });
      await bubble.waitFor();
      const box = await bubble.boundingBox();
      assert.ok(box, "the bubble is rendered");
      assert.equal(Math.round(box.width), 58);
      assert.equal(Math.round(box.height), 58);
      assert.ok(box.x + box.width > 1280 - 40 && box.y + box.height > 800 - 40, `bubble at the bottom right, got ${JSON.stringify(box)}`);
      await screenshot(page, "widget-closed");

      await bubble.click();
      const frameEl = page.locator("kefu-widget iframe");
      await frameEl.waitFor();
      const frameBox = await frameEl.boundingBox();
      assert.ok(frameBox && frameBox.width >= 360 && frameBox.height >= 400, `chat panel is usable: ${JSON.stringify(frameBox)}`);
      const chat = page.frameLocator("kefu-widget iframe");
      await chat.getByTestId("composer").waitFor();
      await chat.getByText("Help desk").first().waitFor();
      await chat.getByTestId("composer").fill("Hi from the shop");
      await chat.getByTestId("composer").press("Enter");
      await chat.getByTestId("message").filter({ hasText: "Hi from the shop" }).waitFor();

      const customer = agent.getByTestId("customer").first();
      await customer.getByTestId("preview").filter({ hasText: "Hi from the shop" }).waitFor();
      await customer.click();
      await messageWith(agent, "Hi from the shop").waitFor();
      await send(agent, "Welcome! How can I help?");
      await chat.getByTestId("message").filter({ hasText: "Welcome! How can I help?" }).waitFor();
      // Bob took the conversation the visitor's first message started: the line saying so comes after
      // that message, under "Today".
      await chat.getByTestId("notice").filter({ hasText: "Bob Li joined the conversation" }).waitFor();
      const rows = await chat
        .getByTestId("messages")
        .evaluate((ol) => [...ol.children].map((li) => (li.classList.contains("day") ? "day" : li.getAttribute("data-testid"))));
      assert.deepEqual(rows.slice(0, 3), ["day", "message", "notice"], `rows: ${rows.join(", ")}`);
      await screenshot(page, "widget-open");

      // Escape closes the panel; so does the minimize button.
      await chat.getByTestId("composer").press("Escape");
      await page.waitForFunction(() => document.querySelector("kefu-widget")?.getAttribute("data-open") === "false");
      await bubble.click();
      await page.waitForFunction(() => document.querySelector("kefu-widget")?.getAttribute("data-open") === "true");

      // Closed: new replies raise the badge on the bubble.
      await chat.getByRole("button", { name: "Minimize chat" }).click();
      await page.waitForFunction(() => document.querySelector("kefu-widget")?.getAttribute("data-open") === "false");
      await send(agent, "Are you still there?");
      await page.waitForFunction(() => document.querySelector("kefu-widget")?.getAttribute("data-unread") === "1");
      const badge = page.locator("kefu-widget [data-kefu-badge]");
      assert.equal(await badge.textContent(), "1");
      assert.ok(await badge.isVisible());
      await screenshot(page, "widget-unread-badge");

      // Opening reads it: the badge goes and the agent sees "read".
      await page.locator("kefu-widget").getByRole("button", { name: /Help desk/ }).click();
      await page.waitForFunction(() => document.querySelector("kefu-widget")?.getAttribute("data-unread") === "0");
      assert.equal(await badge.isVisible(), false);
      await waitForStatus(agent, "Are you still there?", "read");

      // A page at phone width gets the chat full screen.
      await page.setViewportSize({ width: 360, height: 700 });
      await page.waitForTimeout(400);
      const full = await frameEl.boundingBox();
      assert.ok(full && Math.round(full.width) === 360, `full width on phones: ${JSON.stringify(full)}`);
      await screenshot(page, "widget-open-mobile");
      assert.deepEqual(dialogs, []);
    } finally {
      await shopCtx.close();
      await agentCtx.close();
      await shop.close();
    }
  });
});

describe("languages", () => {
  it("shows the pages in Chinese for a Chinese browser", async () => {
    const ctx = await newContext(browser, { ...MOBILE, locale: "zh-CN" });
    const page = await ctx.newPage();
    try {
      await page.goto(`${ui.url}/chat`);
      // Nobody is online by now (the agents of the tests above have left): on a server that knows
      // availability, the chat says so and offers the offline form (留言) in place of the welcome.
      const state = (await knowsAvailability(kefu)) ? (await (await fetch(`${kefu.url}/api/availability`)).json()).state : "open";
      if (state === "away" || state === "closed") {
        await page.getByTestId("availability").filter({ hasText: state === "away" ? "现在没有客服在线" : "现在不是营业时间" }).waitFor();
        await page.getByRole("heading", { name: "给我们留言" }).waitFor();
      } else {
        await page.getByText("您好！有什么可以帮您？").waitFor();
      }
      await screenshot(page, "chat-zh-mobile");
      await page.goto(`${ui.url}/console`);
      await page.getByRole("button", { name: "登录" }).waitFor();
      await screenshot(page, "console-login-zh-mobile");
      await page.goto(`${ui.url}/`);
      await screenshot(page, "landing-zh");
      await page.goto(`${ui.url}/admin`);
      await page.getByLabel("用户名").fill("admin");
      await page.getByLabel("密码").fill(kefu.adminPassword);
      await page.getByRole("button", { name: "登录" }).click();
      await page.getByRole("heading", { name: "节点" }).waitFor();
      await page.getByTestId("node-uptime").filter({ hasText: /^已运行 \d+(秒|分\d\d秒)$/ }).waitFor();
      await screenshot(page, "admin-zh-mobile", { fullPage: true });
    } finally {
      await ctx.close();
    }
  });
});
