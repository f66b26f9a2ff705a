// Browser test of a server restart in the middle of a chat: kefu is stopped (SIGTERM) and started
// again on the same data directory and port. Both sides show that they reconnect, then recover; what
// each side sends afterwards arrives; what was typed while the server was down ends as sent or as
// "failed — retry", and a retry stores it once; and both message lists end up exactly as the server's
// history, with nothing missing and nothing twice. When the UI is served by the harness's proxy, the
// proxy stays up and only kefu restarts.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { io } from "socket.io-client";
import { createAgent, launchBrowser, newContext, screenshot, signIn, startKefu, storedSession, uiFor } from "./harness.mjs";

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

const contents = (page) => page.$$eval('[data-testid="message-content"]', (els) => els.map((e) => e.textContent));

async function send(page, text) {
  await page.getByTestId("composer").fill(text);
  await page.getByTestId("composer").press("Enter");
}

/** The status of my message with this text ("sending", "sent", "read", "failed"), or null. */
const statusOf = (page, text) =>
  page.evaluate(
    (t) =>
      [...document.querySelectorAll('[data-testid="message"]')]
        .find((el) => el.querySelector('[data-testid="message-content"]')?.textContent === t)
        ?.getAttribute("data-status") ?? null,
    text,
  );

/** Waits until my message with this text is stored ("sent" or "read") or has failed. */
async function settled(page, text, timeout = 40_000) {
  const end = Date.now() + timeout;
  for (;;) {
    const s = await statusOf(page, text);
    if (s === "sent" || s === "read" || s === "failed") return s;
    if (Date.now() > end) throw new Error(`"${text}" is still ${s}`);
    await page.waitForTimeout(200);
  }
}

/** Ends a message typed while the server was down: retried once if it failed; stored either way. */
async function ensureStored(page, text) {
  const first = await settled(page, text);
  if (first === "failed") {
    const bubble = page.getByTestId("message").filter({ hasText: text });
    await bubble.getByTestId("retry").click();
    const again = await settled(page, text, 15_000);
    assert.notEqual(again, "failed", `"${text}" failed again after the retry`);
  }
  return first;
}

describe("a server restart", () => {
  it("mid-chat: both sides reconnect and recover, with nothing missing or twice", async (t) => {
    const gina = await createAgent(kefu, "gina", "Gina Ito");
    const agentCtx = await newContext(browser);
    const visitorCtx = await newContext(browser);
    const adminCtx = await newContext(browser);
    const agent = await agentCtx.newPage();
    const visitor = await visitorCtx.newPage();
    const admin = await adminCtx.newPage();
    try {
      // The admin page watches the node through the restart.
      await signIn(admin, ui.url, "/admin", "admin", kefu.adminPassword);
      const startedBefore = await admin.getByTestId("node-started").getAttribute("title");

      await signIn(agent, ui.url, "/console", "gina", gina.password);
      await agent.getByText("No conversations yet").waitFor();
      await visitor.goto(`${ui.url}/chat`);
      await send(visitor, "hello before the restart");
      await agent.getByTestId("customer").first().click();
      await agent.getByTestId("message-content").filter({ hasText: "hello before the restart" }).waitFor();
      await send(agent, "reply before the restart");
      await visitor.getByTestId("message-content").filter({ hasText: "reply before the restart" }).waitFor();

      // SIGTERM: both sides say they are reconnecting.
      await kefu.stop();
      for (const page of [visitor, agent]) {
        await page.getByTestId("connection-state").filter({ hasText: "Reconnecting" }).waitFor({ timeout: 15_000 });
      }
      // The admin page says plainly that it cannot reach the server, and keeps the last data.
      await admin.getByTestId("refresh").click();
      await admin.getByTestId("agents-error").filter({ hasText: "The server can't be reached." }).waitFor({ timeout: 10_000 });
      await admin.getByTestId("nodes-error").filter({ hasText: "Showing what was known at" }).waitFor();
      await admin.locator('[data-testid="agent-row"][data-username="gina"]').waitFor();
      await screenshot(admin, "admin-server-down");
      // The visitor writes while the server is down, long enough for the message to give up;
      // the agent writes just before it comes back.
      await send(visitor, "visitor typed while down");
      await visitor.getByTestId("retry").waitFor({ timeout: 20_000 });
      await screenshot(visitor, "chat-server-down");
      await send(agent, "agent typed while down");
      assert.equal(await statusOf(agent, "agent typed while down"), "sending");

      await kefu.start();
      for (const page of [visitor, agent]) {
        await page.getByTestId("connection-state").waitFor({ state: "detached", timeout: 30_000 });
      }
      // The admin page recovers by itself and shows the new process, just started.
      await admin.getByTestId("agents-error").waitFor({ state: "detached", timeout: 15_000 });
      await admin.getByTestId("nodes-error").waitFor({ state: "detached" });
      assert.ok((await admin.getByTestId("node-started").getAttribute("title")) > startedBefore, "a new start time");
      assert.match(await admin.getByTestId("node-uptime").textContent(), /^Up \d+s$/);

      // What was typed while down: sent after recovery, or failed and then retried once.
      const visitorFirst = await ensureStored(visitor, "visitor typed while down");
      assert.equal(visitorFirst, "failed");
      const agentFirst = await ensureStored(agent, "agent typed while down");
      t.diagnostic(`the agent's message typed while down: ${agentFirst === "failed" ? "failed, then retried" : "sent after recovery"}`);

      // Both sides still talk.
      await send(visitor, "visitor after the restart");
      await agent.getByTestId("message-content").filter({ hasText: "visitor after the restart" }).waitFor();
      await send(agent, "agent after the restart");
      await visitor.getByTestId("message-content").filter({ hasText: "agent after the restart" }).waitFor();
      for (const [page, text] of [
        [visitor, "visitor after the restart"],
        [agent, "agent after the restart"],
      ]) {
        const s = await settled(page, text, 10_000);
        assert.ok(s === "sent" || s === "read", `${text}: ${s}`);
      }
      await agent.getByTestId("message-content").filter({ hasText: "visitor typed while down" }).waitFor();
      await visitor.getByTestId("message-content").filter({ hasText: "agent typed while down" }).waitFor();

      // Each side shows exactly the server's history.
      const session = await storedSession(visitor, "visitor");
      const history = await historyOf(session);
      assert.equal(history.length, 6, JSON.stringify(history));
      assert.equal(new Set(history).size, history.length, `stored twice: ${JSON.stringify(history)}`);
      for (const text of [
        "hello before the restart",
        "reply before the restart",
        "visitor typed while down",
        "agent typed while down",
        "visitor after the restart",
        "agent after the restart",
      ]) {
        assert.equal(history.filter((h) => h === text).length, 1, `${text} in ${JSON.stringify(history)}`);
      }
      assert.deepEqual(await contents(visitor), history);
      assert.deepEqual(await contents(agent), history);
      assert.equal(await visitor.locator('[data-status="sending"], [data-status="failed"]').count(), 0);
      assert.equal(await agent.locator('[data-status="sending"], [data-status="failed"]').count(), 0);
      await screenshot(agent, "console-after-restart");
    } finally {
      await adminCtx.close();
      await visitorCtx.close();
      await agentCtx.close();
    }
  });
});

/** The conversation as the server stores it, read with the visitor's own token. */
async function historyOf(session) {
  const socket = io(kefu.url, { auth: { token: session.token }, transports: ["websocket"], reconnection: false });
  try {
    const login = await socket.timeout(10_000).emitWithAck("login", { userId: session.user.id });
    assert.equal(login.ok, true, JSON.stringify(login));
    const ack = await socket.timeout(10_000).emitWithAck("history", { limit: 100 });
    assert.equal(ack.ok, true, JSON.stringify(ack));
    assert.equal(ack.hasMore, false);
    return ack.messages.map((m) => m.content);
  } finally {
    socket.close();
  }
}
