// The restart story, again and again: an agent and a visitor chat; kefu gets SIGTERM; the visitor
// writes a message, then the agent does, while it is down; kefu starts again. After each round, both
// screens hold every message of the server's history (no seq skipped, whoever reconnected first),
// and no message shows "Read" unless the reader's screen holds it.
//
// KEFU_E2E_RESTARTS rounds (default 20). Each round is its own test; a round that
// fails reloads both pages, so that the next one starts whole and each round counts on its own.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { io } from "socket.io-client";
import { createAgent, launchBrowser, newContext, screenshot, signIn, startKefu, storedSession, uiFor } from "./harness.mjs";

const ROUNDS = Number(process.env.KEFU_E2E_RESTARTS ?? 20);

let kefu;
let ui;
let browser;
let agentCtx;
let visitorCtx;
let agent;
let visitor;
/** Set by a round that failed: the next one reloads both pages first. */
let broken = false;

before(async () => {
  kefu = await startKefu();
  ui = await uiFor(kefu);
  browser = await launchBrowser();
  const gina = await createAgent(kefu, "gina", "Gina Ito");
  agentCtx = await newContext(browser);
  visitorCtx = await newContext(browser);
  agent = await agentCtx.newPage();
  visitor = await visitorCtx.newPage();
  await signIn(agent, ui.url, "/console", "gina", gina.password);
  await agent.getByText("No conversations yet").waitFor();
  await visitor.goto(`${ui.url}/chat`);
  await send(visitor, "hello");
  await agent.getByTestId("customer").first().click();
  await shown(agent, "hello");
});

after(async () => {
  await visitorCtx?.close();
  await agentCtx?.close();
  await browser?.close();
  await ui?.close();
  await kefu?.close();
});

async function send(page, text) {
  await page.getByTestId("composer").fill(text);
  await page.getByTestId("composer").press("Enter");
}

const shown = (page, text, timeout = 15_000) => page.getByTestId("message-content").filter({ hasText: text }).first().waitFor({ timeout });

const contents = (page) => page.$$eval('[data-testid="message-content"]', (els) => els.map((e) => e.textContent));

/** The contents of my messages with this status on the page. */
const withStatus = (page, status) =>
  page.$$eval(
    `[data-testid="message"][data-status="${status}"] [data-testid="message-content"]`,
    (els) => els.map((e) => e.textContent),
  );

const statusOf = (page, text) =>
  page.evaluate(
    (t) =>
      [...document.querySelectorAll('[data-testid="message"]')]
        .find((el) => el.querySelector('[data-testid="message-content"]')?.textContent === t)
        ?.getAttribute("data-status") ?? null,
    text,
  );

/** Polls `check` (which returns null when satisfied, else what is still wrong) until it holds. */
async function until(check, timeout) {
  const end = Date.now() + timeout;
  for (;;) {
    const wrong = await check();
    if (wrong === null) return null;
    if (Date.now() > end) return wrong;
    await new Promise((r) => setTimeout(r, 150));
  }
}

/** Waits until my message is stored ("sent" or "read"); retried once if it failed. */
async function ensureStored(page, text) {
  let wrong = await until(async () => {
    const s = await statusOf(page, text);
    return s === "sent" || s === "read" || s === "failed" ? null : `"${text}" is ${s}`;
  }, 40_000);
  assert.equal(wrong, null, wrong);
  if ((await statusOf(page, text)) === "failed") {
    await page.getByTestId("message").filter({ hasText: text }).getByTestId("retry").click();
    wrong = await until(async () => {
      const s = await statusOf(page, text);
      return s === "sent" || s === "read" ? null : `"${text}" is ${s} after a retry`;
    }, 15_000);
    assert.equal(wrong, null, wrong);
  }
}

/** Every message of the conversation as the server stores it (the visitor's own token). */
async function serverHistory() {
  const session = await storedSession(visitor, "visitor");
  const socket = io(kefu.url, { auth: { token: session.token }, transports: ["websocket"], reconnection: false });
  try {
    const login = await socket.timeout(10_000).emitWithAck("login", { userId: session.user.id });
    assert.equal(login.ok, true, JSON.stringify(login));
    const all = [];
    for (;;) {
      const ack = await socket.timeout(10_000).emitWithAck("history", { afterSeq: all.length, limit: 100 });
      assert.equal(ack.ok, true, JSON.stringify(ack));
      all.push(...ack.messages);
      if (!ack.hasMore) break;
    }
    all.forEach((m, i) => assert.equal(m.seq, i + 1, "the server's seqs run from 1 without a hole"));
    return all.map((m) => m.content);
  } finally {
    socket.close();
  }
}

/**
 * What a screen lacks of the server's history, or null: it must show the history from its first
 * message on (a reloaded page starts at its latest page), with nothing missing, twice or out of order.
 */
function lacking(screen, history) {
  const from = history.indexOf(screen[0]);
  if (from < 0) return `shows ${JSON.stringify(screen[0])}, which the server does not have`;
  const expected = history.slice(from);
  if (JSON.stringify(screen) === JSON.stringify(expected)) return null;
  const missing = expected.filter((h) => !screen.includes(h));
  return missing.length > 0 ? `misses ${JSON.stringify(missing)}` : `shows ${JSON.stringify(screen)}, the server has ${JSON.stringify(expected)}`;
}

/** Messages a page shows as "Read" that the reader's page does not hold. */
async function falseReads(page, readerPage) {
  const read = await withStatus(page, "read");
  const held = new Set(await contents(readerPage));
  return read.filter((text) => !held.has(text));
}

describe(`a server restart, ${ROUNDS} times in a row`, () => {
  for (let round = 1; round <= ROUNDS; round++) {
    it(`round ${round}: nothing missing and no false "Read" on either side`, async (t) => {
      if (broken) {
        await Promise.all([agent.reload(), visitor.reload()]);
        await Promise.all([agent.getByTestId("message-content").first().waitFor(), visitor.getByTestId("message-content").first().waitFor()]);
        broken = false;
      }
      const started = Date.now();
      try {
        await send(visitor, `v${round} before the restart`);
        await shown(agent, `v${round} before the restart`);
        await send(agent, `a${round} before the restart`);
        await shown(visitor, `a${round} before the restart`);

        await kefu.stop();
        for (const page of [visitor, agent]) {
          await page.getByTestId("connection-state").filter({ hasText: "Reconnecting" }).waitFor({ timeout: 15_000 });
        }
        await send(visitor, `v${round} while down`);
        await send(agent, `a${round} while down`);
        await kefu.start();
        for (const page of [visitor, agent]) {
          await page.getByTestId("connection-state").waitFor({ state: "detached", timeout: 30_000 });
        }
        await ensureStored(visitor, `v${round} while down`);
        await ensureStored(agent, `a${round} while down`);

        // The visitor writes on; the agent's console reads it (and so everything before it).
        await send(visitor, `v${round} after the restart`);
        await shown(agent, `v${round} after the restart`);
        const unread = await until(async () => {
          const s = await statusOf(visitor, `v${round} after the restart`);
          return s === "read" ? null : `"v${round} after the restart" is ${s}`;
        }, 15_000);

        const history = await serverHistory();
        const problems = [];
        for (const [name, page] of [
          ["the agent's console", agent],
          ["the visitor's chat", visitor],
        ]) {
          // The last message may still be on its way to the other side; a hole is never filled.
          const wrong = await until(async () => lacking(await contents(page), history), 10_000);
          if (wrong) problems.push(`${name} ${wrong}`);
        }
        const visitorFalse = await falseReads(visitor, agent);
        if (visitorFalse.length) problems.push(`the visitor sees "Read" on ${JSON.stringify(visitorFalse)}, which the agent's console lacks`);
        const agentFalse = await falseReads(agent, visitor);
        if (agentFalse.length) problems.push(`the agent sees "Read" on ${JSON.stringify(agentFalse)}, which the visitor's chat lacks`);
        if (unread) problems.push(`the agent's console never read the visitor's last message: ${unread}`);
        t.diagnostic(`${((Date.now() - started) / 1000).toFixed(1)} s, ${history.length} messages stored`);
        assert.deepEqual(problems, []);
      } catch (e) {
        broken = true;
        await screenshot(agent, `restart-loop-${round}-console`).catch(() => undefined);
        await screenshot(visitor, `restart-loop-${round}-chat`).catch(() => undefined);
        throw e;
      }
    });
  }
});
