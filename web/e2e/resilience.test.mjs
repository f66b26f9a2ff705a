// Browser tests of the harder paths: a network outage (reconnect, resync without gaps or duplicates,
// failed messages and their retry) and a long history loaded by scrolling up.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { io } from "socket.io-client";
import { createAgent, launchBrowser, newContext, screenshot, signIn, startKefu, startUiProxy, uiFor } from "./harness.mjs";

let kefu;
let direct;
let browser;

before(async () => {
  kefu = await startKefu();
  direct = await uiFor(kefu);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await direct?.close();
  await kefu?.close();
});

const contents = (page) =>
  page.$$eval('[data-testid="message-content"]', (els) => els.map((e) => e.textContent));

async function send(page, text) {
  await page.getByTestId("composer").fill(text);
  await page.getByTestId("composer").press("Enter");
}

describe("a network outage", () => {
  it("reconnects, fetches what was missed, and retries a failed message once", async () => {
    const agentUser = await createAgent(kefu, "erin", "Erin Wu");
    const agentCtx = await newContext(browser);
    const agent = await agentCtx.newPage();
    await signIn(agent, direct.url, "/console", "erin", agentUser.password);
    await agent.getByText("No conversations yet").waitFor();

    // The visitor reaches the server through a link we can cut.
    const link = await startUiProxy(kefu.url);
    const visitorCtx = await newContext(browser);
    const visitor = await visitorCtx.newPage();
    try {
      await visitor.goto(`${link.url}/chat`);
      await send(visitor, "before the outage");
      await visitor.locator('[data-status="sent"], [data-status="read"]').first().waitFor();
      await agent.getByTestId("customer").first().click();
      await agent.getByTestId("message-content").filter({ hasText: "before the outage" }).waitFor();

      link.setBlocked(true);
      await visitor.getByTestId("connection-state").filter({ hasText: "Reconnecting" }).waitFor({ timeout: 15_000 });

      // Meanwhile the agent writes, and the visitor's own message cannot go out.
      for (const text of ["missed one", "missed two", "missed three"]) await send(agent, text);
      await send(visitor, "written offline");
      await visitor.locator('[data-status="sending"]').waitFor();
      await visitor.getByTestId("retry").waitFor({ timeout: 20_000 });

      link.setBlocked(false);
      await visitor.getByTestId("connection-state").waitFor({ state: "detached", timeout: 20_000 });
      await visitor.getByTestId("message-content").filter({ hasText: "missed three" }).waitFor();
      // The failed message stays last, after everything stored, until it is sent.
      assert.deepEqual(await contents(visitor), [
        "before the outage",
        "missed one",
        "missed two",
        "missed three",
        "written offline",
      ]);

      await visitor.getByTestId("retry").click();
      await agent.getByTestId("message-content").filter({ hasText: "written offline" }).waitFor();
      await visitor.locator('[data-status="failed"]').waitFor({ state: "detached" });
      assert.equal((await contents(agent)).filter((t) => t === "written offline").length, 1);
      assert.deepEqual(await contents(agent), [
        "before the outage",
        "missed one",
        "missed two",
        "missed three",
        "written offline",
      ]);
    } finally {
      await visitorCtx.close();
      await agentCtx.close();
      await link.close();
    }
  });
});

describe("a long conversation", () => {
  it("loads older messages when the agent scrolls up, without gaps or duplicates", async () => {
    const agentUser = await createAgent(kefu, "frank", "Frank Zhou");
    const agentCtx = await newContext(browser);
    // Desktop notifications, recorded instead of shown.
    await agentCtx.addInitScript(() => {
      window.__notifications = [];
      window.Notification = class {
        static permission = "granted";
        static requestPermission = async () => "granted";
        constructor(title, options) {
          window.__notifications.push({ title, body: options?.body });
        }
        close() {}
      };
    });
    const agent = await agentCtx.newPage();
    await signIn(agent, direct.url, "/console", "frank", agentUser.password);
    await agent.getByText("No conversations yet").waitFor();

    // A customer with 130 messages, written with the official client.
    const res = await fetch(`${kefu.url}/api/visitors`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: "Long Talker" }),
    });
    const { token, user } = await res.json();
    const socket = io(kefu.url, { auth: { token }, transports: ["websocket"] });
    try {
      const login = await socket.timeout(10_000).emitWithAck("login", { userId: user.id });
      assert.equal(login.ok, true);
      const total = 130;
      for (let i = 1; i <= total; i++) {
        const ack = await socket.timeout(10_000).emitWithAck("private_message", { content: `message ${i}`, clientMsgId: `m-${i}` });
        if (!ack.ok && ack.error.code === "rate_limited") {
          await new Promise((r) => setTimeout(r, 200));
          i--;
          continue;
        }
        assert.equal(ack.ok, true, JSON.stringify(ack));
      }

      const customer = agent.getByTestId("customer").filter({ hasText: "Long Talker" });
      try {
        await customer.getByLabel(`${total} unread`).waitFor({ timeout: 10_000 });
      } catch (e) {
        throw new Error(`unread badge: ${await customer.textContent()}`, { cause: e });
      }
      await customer.click();
      await agent.getByTestId("message-content").filter({ hasText: new RegExp(`^message ${total}$`) }).waitFor();
      const firstPage = await contents(agent);
      assert.equal(firstPage.length, 50);

      // Scroll to the top until the start of the conversation.
      for (let i = 0; i < 10; i++) {
        await agent.locator(".scroller").evaluate((el) => (el.scrollTop = 0));
        if (await agent.getByText("This is the start of the conversation").isVisible()) break;
        await agent.waitForTimeout(300);
      }
      await agent.getByText("This is the start of the conversation").waitFor();
      const all = await contents(agent);
      assert.deepEqual(all, Array.from({ length: total }, (_, i) => `message ${i + 1}`));
      await customer.getByTestId("unread").waitFor({ state: "detached" });

      // The tab goes to the background: new messages notify and stay unread, even in the open
      // conversation, until the agent looks again.
      const other = await visitorSocket(kefu.url, "Quick Question");
      try {
        await agent.evaluate(() => {
          Object.defineProperty(document, "visibilityState", { configurable: true, get: () => "hidden" });
          document.dispatchEvent(new Event("visibilitychange"));
        });
        await other.send("is this in stock?");
        await socket.timeout(10_000).emitWithAck("private_message", { content: "one more thing", clientMsgId: "m-last" });
        const quick = agent.getByTestId("customer").filter({ hasText: "Quick Question" });
        await quick.getByLabel("1 unread").waitFor();
        await customer.getByLabel("1 unread").waitFor();
        await agent.waitForFunction(() => window.__notifications?.length === 2);
        const notes = await agent.evaluate(() => window.__notifications);
        assert.deepEqual(
          notes.map((n) => [n.title, n.body]).sort(),
          [
            ["New message from Long Talker", "one more thing"],
            ["New message from Quick Question", "is this in stock?"],
          ],
        );
        await agent.evaluate(() => {
          Object.defineProperty(document, "visibilityState", { configurable: true, get: () => "visible" });
          document.dispatchEvent(new Event("visibilitychange"));
        });
        await customer.getByTestId("unread").waitFor({ state: "detached" });
        assert.equal(await quick.getByLabel("1 unread").count(), 1);

        // Drafts are kept per customer when switching.
        await agent.getByTestId("composer").fill("draft for long");
        await quick.click();
        await agent.getByTestId("message-content").filter({ hasText: "is this in stock?" }).waitFor();
        assert.equal(await agent.getByTestId("composer").inputValue(), "");
        await agent.getByTestId("composer").fill("draft for quick");
        await customer.click();
        await agent.getByTestId("message-content").filter({ hasText: "one more thing" }).waitFor();
        assert.equal(await agent.getByTestId("composer").inputValue(), "draft for long");
        await quick.getByText("draft for quick").waitFor();
        await quick.click();
        assert.equal(await agent.getByTestId("composer").inputValue(), "draft for quick");
        await screenshot(agent, "console-several-customers");
      } finally {
        other.close();
      }
    } finally {
      socket.close();
      await agentCtx.close();
    }
  });
});

/** A visitor driven by the official client. */
async function visitorSocket(base, name) {
  const res = await fetch(`${base}/api/visitors`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name }),
  });
  const { token, user } = await res.json();
  const socket = io(base, { auth: { token }, transports: ["websocket"] });
  const login = await socket.timeout(10_000).emitWithAck("login", { userId: user.id });
  assert.equal(login.ok, true);
  let n = 0;
  return {
    send: (content) => socket.timeout(10_000).emitWithAck("private_message", { content, clientMsgId: `q-${++n}` }),
    close: () => socket.close(),
  };
}
