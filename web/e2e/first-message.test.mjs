// Browser tests of how a conversation starts: opening the chat starts nothing (no conversation, no
// agent, no place in line, nothing in any console), and the visitor's first message does. The chat
// then shows the agent who took it, or, with no agent online, the visitor's place in line and then
// the agent who signs in. Screenshots of the chat before and after the first message, at desktop and
// phone widths, go to e2e/screenshots/.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { adminToken, createAgent, knowsAvailability, launchBrowser, newContext, screenshot, signIn, startKefu, storedSession, uiFor } from "./harness.mjs";

const MOBILE = { viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true };

let kefu;
let ui;
let browser;

before(async () => {
  kefu = await startKefu();
  ui = await uiFor(kefu);
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await ui?.close();
  await kefu?.close();
});

async function getJson(path, token) {
  const res = await fetch(`${kefu.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
  assert.equal(res.status, 200, `${path}: ${res.status}`);
  return res.json();
}

/** The visitor's own conversations (`GET /api/conversations` with its token). */
async function conversationsOf(page) {
  const { token } = await storedSession(page, "visitor");
  return (await getJson("/api/conversations", token)).conversations;
}

/** The conversations of these customers, as the admin finds them (`GET /api/admin/conversations`). */
async function adminConversationsOf(customerIds) {
  const { conversations } = await getJson("/api/admin/conversations?limit=100", await adminToken(kefu));
  return conversations.filter((c) => customerIds.includes(c.customer.id));
}

/** A visitor with the chat open and loaded (signed in, its history read): nothing written yet. */
async function openChat(options = {}) {
  const ctx = await newContext(browser, options);
  const page = await ctx.newPage();
  await page.goto(`${ui.url}/chat`);
  await page.getByTestId("messages").waitFor({ state: "attached" });
  // The welcome; or, while nobody is available (issue 15), the offline form in its place. The
  // welcome alone would race: it shows until the chat has read the availability, then goes.
  await page.getByTestId("welcome").or(page.getByTestId("offline-form")).first().waitFor();
  const { user } = await storedSession(page, "visitor");
  return { ctx, page, user };
}

async function send(page, text) {
  const box = page.getByTestId("composer");
  await box.fill(text);
  await box.press("Enter");
}

/** Waits until the message shows as stored by the server. */
async function stored(page, text) {
  await page
    .locator('[data-testid="message"][data-status="sent"], [data-testid="message"][data-status="read"]')
    .filter({ hasText: text })
    .waitFor({ timeout: 15_000 });
}

/** What the chat's list shows, top to bottom: messages by their text, lines by theirs. */
const rowsOf = (page) =>
  page.getByTestId("messages").evaluate((ol) =>
    [...ol.children]
      .filter((li) => !li.classList.contains("day"))
      .map((li) => (li.querySelector('[data-testid="message-content"]') ?? li).textContent.trim()),
  );

/** Nothing in the chat says who answers or that anyone waits: the header names the team. */
async function assertWelcome(page) {
  await page.getByTestId("welcome").filter({ hasText: "an agent will answer you right here" }).waitFor();
  assert.equal((await page.getByTestId("agent-state").textContent()).trim(), "Support team");
  assert.equal(await page.getByTestId("queued").count(), 0, "no place in line before the first message");
  assert.equal(await page.getByTestId("agent-away").count(), 0);
  assert.equal(await page.getByTestId("notice").count(), 0);
  assert.equal(await page.getByTestId("composer").isEnabled(), true, "the composer is ready");
}

describe("the first message", () => {
  it("with no agent online, shows the place in line, then the agent who signs in", async () => {
    const ivan = await createAgent(kefu, "ivan", "Ivan Petrov");
    const visitor = await openChat(MOBILE);
    const agentCtx = await newContext(browser);
    try {
      if (await knowsAvailability(kefu)) {
        // Nobody is available (issue 15): the offline form, never "number 1 in line".
        await visitor.page.getByTestId("availability").filter({ hasText: "Nobody is available right now" }).waitFor();
        assert.equal(await visitor.page.getByTestId("queued").count(), 0, "no place in line when nobody is there");
        assert.equal(await visitor.page.getByText(/number \d+ in line/).count(), 0);
        await visitor.page.getByTestId("offline-form").waitFor();
        // Ivan signs in: the chat sees it within 30 s, and the first message goes to him.
        const agent = await agentCtx.newPage();
        await signIn(agent, ui.url, "/console", "ivan", ivan.password);
        await visitor.page.getByTestId("composer").waitFor({ timeout: 40_000 });
        await visitor.page.getByTestId("offline-form").waitFor({ state: "detached" });
        await send(visitor.page, "Is anyone there?");
        await stored(visitor.page, "Is anyone there?");
        await visitor.page.getByTestId("agent-state").filter({ hasText: "Ivan Petrov" }).waitFor();
        await visitor.page.getByTestId("notice").filter({ hasText: "Ivan Petrov joined the conversation" }).waitFor();
        return;
      }
      await assertWelcome(visitor.page);
      await send(visitor.page, "Is anyone there?");
      await stored(visitor.page, "Is anyone there?");
      // The ack says it waits; its place follows within a second.
      const queued = visitor.page.getByTestId("queued");
      await queued.filter({ hasText: /^\s*You are number 1 in line — about \d+ min\s*$/ }).waitFor({ timeout: 5000 });
      assert.equal((await visitor.page.getByTestId("agent-state").textContent()).trim(), "Support team");
      await screenshot(visitor.page, "first-message-queued-mobile");
      const [waiting] = await conversationsOf(visitor.page);
      assert.equal(waiting?.agentId, null, "the conversation waits for an agent");

      // Ivan signs in: the waiting conversation is his, and the visitor sees it.
      const agent = await agentCtx.newPage();
      await signIn(agent, ui.url, "/console", "ivan", ivan.password);
      await agent.getByTestId("customer").filter({ hasText: "Is anyone there?" }).waitFor();
      await visitor.page.getByTestId("agent-state").filter({ hasText: "Ivan Petrov" }).waitFor();
      await queued.waitFor({ state: "detached" });
      await visitor.page.getByTestId("notice").filter({ hasText: "Ivan Petrov joined the conversation" }).waitFor();
      assert.deepEqual(await rowsOf(visitor.page), ["Is anyone there?", "Ivan Petrov joined the conversation"]);
      await screenshot(visitor.page, "first-message-queued-then-agent-mobile");
    } finally {
      // Ivan leaves: the next tests have their own agent.
      await agentCtx.close();
      await visitor.ctx.close();
    }
  });

  it("a visitor who opens the chat and leaves starts no conversation, and no console lists it", async () => {
    const judy = await createAgent(kefu, "judy", "Judy Alvarez");
    const agentCtx = await newContext(browser);
    const agent = await agentCtx.newPage();
    try {
      await signIn(agent, ui.url, "/console", "judy", judy.password);
      await agent.getByText("No conversations yet").waitFor();

      const desktop = await openChat();
      const phone = await openChat(MOBILE);
      await assertWelcome(desktop.page);
      await assertWelcome(phone.page);
      await screenshot(desktop.page, "first-message-before-desktop");
      await screenshot(phone.page, "first-message-before-mobile");
      // Both visitors are signed in with a live connection, and have nothing: no conversation at all.
      assert.deepEqual(await conversationsOf(desktop.page), []);
      assert.deepEqual(await conversationsOf(phone.page), []);
      await desktop.ctx.close();
      await phone.ctx.close();

      // They left: still nothing, for the admin either, and the agent's console never listed them.
      assert.deepEqual(await adminConversationsOf([desktop.user.id, phone.user.id]), []);
      assert.equal(await agent.getByTestId("customer").count(), 0);
      await agent.getByText("No conversations yet").waitFor();
    } finally {
      await agentCtx.close();
    }
  });

  it("shows the agent who took it, and the console lists the customer only once it wrote", async () => {
    const kim = await createAgent(kefu, "kim", "Kim Nakamura");
    const agentCtx = await newContext(browser);
    const agent = await agentCtx.newPage();
    const visitors = [];
    try {
      await signIn(agent, ui.url, "/console", "kim", kim.password);
      await agent.getByText("No conversations yet").waitFor();

      for (const [label, options, text] of [
        ["desktop", {}, "Do you have these shoes in size 42?"],
        ["mobile", MOBILE, "Can I pay on delivery?"],
      ]) {
        const v = await openChat(options);
        visitors.push(v);
        await assertWelcome(v.page);
        // Signed in and connected, not written: the console does not list it.
        await agent.waitForTimeout(500);
        assert.equal(await agent.getByTestId("customer").filter({ hasText: v.user.displayName }).count(), 0);

        await send(v.page, text);
        await stored(v.page, text);
        await v.page.getByTestId("agent-state").filter({ hasText: "Kim Nakamura" }).waitFor();
        await v.page.getByTestId("notice").filter({ hasText: "Kim Nakamura joined the conversation" }).waitFor();
        // The line comes after the message that started the conversation; nobody waited in line.
        assert.deepEqual(await rowsOf(v.page), [text, "Kim Nakamura joined the conversation"]);
        assert.equal(await v.page.getByTestId("queued").count(), 0);
        await screenshot(v.page, `first-message-after-${label}`);

        // The console lists it now, with its message.
        const row = agent.getByTestId("customer").filter({ hasText: v.user.displayName });
        await row.getByTestId("preview").filter({ hasText: text }).waitFor();
        const [open] = await conversationsOf(v.page);
        assert.equal(open?.status, "open");
        assert.equal(open?.agentId, kim.id);
      }

      // The agent answers the first visitor, who reads it.
      const first = visitors[0];
      await agent.getByTestId("customer").filter({ hasText: first.user.displayName }).click();
      await agent.getByTestId("message").filter({ hasText: "size 42" }).waitFor();
      await agent.getByTestId("composer").fill("Yes, we do!");
      await agent.getByTestId("composer").press("Enter");
      await first.page.getByTestId("message").filter({ hasText: "Yes, we do!" }).waitFor();
      assert.equal(await agent.getByTestId("customer").count(), 2);
    } finally {
      for (const v of visitors) await v.ctx.close();
      await agentCtx.close();
    }
  });
});
