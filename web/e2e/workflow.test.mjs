// Browser tests of the customer-service workflow against the real server: canned replies, a transfer
// between agents with a private note, resolving and rating a conversation (and the admin report that
// shows the rating), and the place in the queue when every agent is full.
//
// Each test needs a part of the server's workflow (docs: the workflow spec, parts A–D); against a
// binary without it, the test is skipped and says which part is missing.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import zlib from "node:zlib";
import { io } from "socket.io-client";
import { adminToken, createAgent, launchBrowser, newContext, screenshot, signIn, startKefu, storedSession, uiFor } from "./harness.mjs";

let kefu;
let ui;
let browser;
/** Which parts of the workflow the server has, probed once. */
const has = {};

async function probe(path, token) {
  const res = await fetch(`${kefu.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
  await res.body?.cancel();
  return res.ok;
}

/** Whether the server answers a Socket.IO event at all (an unknown event gets no ack). */
async function probeEvent(token, event, payload) {
  const socket = io(kefu.url, { auth: { token }, transports: ["websocket"] });
  try {
    await socket.timeout(3000).emitWithAck(event, payload);
    return true;
  } catch {
    return false;
  } finally {
    socket.close();
  }
}

before(async () => {
  kefu = await startKefu();
  ui = await uiFor(kefu);
  browser = await launchBrowser();
  const token = await adminToken(kefu);
  has.A = await probe("/api/conversations", token);
  has.B = await probeEvent(token, "notes", { conversationId: "999999999" });
  has.C = await probe("/api/admin/reports?days=1", token);
  has.D = await probe("/api/canned-replies", token);
  // Attachments: the route answers (here a 4xx for an empty upload) rather than not existing.
  const upload = await fetch(`${kefu.url}/api/attachments`, { method: "POST", headers: { authorization: `Bearer ${token}` } });
  await upload.body?.cancel();
  has.attachments = upload.status !== 404 && upload.status !== 405;
});

after(async () => {
  if (process.env.KEFU_E2E_LOG === "1") console.log(`# kefu log:\n${kefu?.log.join("\n")}`);
  await browser?.close();
  await ui?.close();
  await kefu?.close();
});

/** Skips the test (saying why) unless the server has every part named. */
function needs(t, ...parts) {
  const missing = parts.filter((p) => !has[p]);
  if (missing.length === 0) return false;
  const names = { A: "A", B: "B", C: "C", D: "D (canned replies)", attachments: "D (attachments)" };
  t.skip(`the server at ${process.env.KEFU_BIN ?? "target/debug/kefu"} lacks workflow part ${missing.map((p) => names[p]).join(", ")}`);
  return true;
}

const messageWith = (page, text) => page.getByTestId("message").filter({ hasText: text }).last();

async function send(page, text) {
  const box = page.getByTestId("composer");
  await box.fill(text);
  await box.press("Enter");
}

/** A visitor with the chat open, who has written `text` (and seen it stored). */
async function visitorWriting(text) {
  const ctx = await newContext(browser);
  const page = await ctx.newPage();
  await page.goto(`${ui.url}/chat`);
  await send(page, text);
  await page.locator('[data-status="sent"], [data-status="read"], [data-status="failed"]').first().waitFor();
  assert.equal(await page.locator('[data-status="failed"]').count(), 0, `"${text}" was not sent: ${await page.getByRole("alert").allTextContents()}`);
  const { user } = await storedSession(page, "visitor");
  return { ctx, page, user };
}

async function consoleFor(username, password) {
  const ctx = await newContext(browser);
  const page = await ctx.newPage();
  await signIn(page, ui.url, "/console", username, password);
  await page.getByTestId("status-switch").waitFor();
  return { ctx, page };
}

const customerRow = (page, name) => page.getByTestId("customer").filter({ hasText: name });

describe("canned replies", () => {
  it("are created in the manager and inserted with / and Enter, names filled in", async (t) => {
    if (needs(t, "D")) return;
    const alice = await createAgent(kefu, "alice", "Alice Chen");
    const agent = await consoleFor("alice", alice.password);
    const visitor = await visitorWriting("Where is my refund?");
    try {
      const name = visitor.user.displayName;
      await customerRow(agent.page, name).click();
      await messageWith(agent.page, "Where is my refund?").waitFor();

      // The manager: a personal reply with both placeholders.
      await agent.page.getByTestId("canned-open").click();
      const manager = agent.page.getByTestId("canned-manager");
      await manager.getByTestId("canned-shortcut").fill("refund");
      await manager.getByTestId("canned-content").fill("Hi {{customer.name}}, this is {{agent.name}}: your refund is on its way.");
      await manager.getByTestId("canned-save").click();
      await manager.locator('[data-testid="canned-reply"][data-shortcut="/refund"]').waitFor();
      // The same shortcut again is refused, and says why.
      await manager.getByTestId("canned-shortcut").fill("/refund");
      await manager.getByTestId("canned-content").fill("again");
      await manager.getByTestId("canned-save").click();
      await manager.getByTestId("canned-error").filter({ hasText: "already taken" }).waitFor();
      await screenshot(agent.page, "console-canned-manager");
      await manager.getByRole("button", { name: "Close" }).first().click();
      await manager.waitFor({ state: "hidden" });

      // "/ref" lists it; Escape closes the list; changing the shortcut opens it again; Enter inserts
      // the reply with the names filled in.
      const box = agent.page.getByTestId("composer");
      await box.pressSequentially("/ref", { delay: 20 });
      const popup = agent.page.getByTestId("canned-popup");
      await popup.getByTestId("canned-option").filter({ hasText: "/refund" }).waitFor();
      await screenshot(agent.page, "console-canned-popup");
      await box.press("Escape");
      await popup.waitFor({ state: "detached" });
      await box.press("Backspace");
      await box.pressSequentially("f");
      await popup.waitFor();
      await box.press("Enter");
      await popup.waitFor({ state: "detached" });
      const filled = `Hi ${name}, this is Alice Chen: your refund is on its way.`;
      assert.equal(await box.inputValue(), filled);

      // A second Enter sends it; the customer gets the filled-in text.
      await box.press("Enter");
      await messageWith(visitor.page, filled).waitFor();
      assert.equal(await box.inputValue(), "");
    } finally {
      await visitor.ctx.close();
      await agent.ctx.close();
    }
  });
});

describe("transfer", () => {
  it("hands a conversation to another agent with its history and a private note", async (t) => {
    if (needs(t, "A", "B")) return;
    const bob = await createAgent(kefu, "bob", "Bob Li");
    const carol = await createAgent(kefu, "carol", "Carol Wang");
    // Bob is the only agent online when the customer writes: the conversation is his.
    const a = await consoleFor("bob", bob.password);
    const visitor = await visitorWriting("I need help with an invoice");
    const b = await consoleFor("carol", carol.password);
    try {
      const name = visitor.user.displayName;
      await customerRow(a.page, name).click();
      await messageWith(a.page, "I need help with an invoice").waitFor();
      await send(a.page, "Let me get a specialist for you");
      await messageWith(visitor.page, "Let me get a specialist for you").waitFor();

      // A private note: agents only, with its own look.
      await a.page.getByTestId("mode-note").click();
      await send(a.page, "Invoice #991 was paid twice");
      await a.page.getByTestId("note").filter({ hasText: "Invoice #991 was paid twice" }).waitFor();
      await a.page.getByTestId("mode-reply").click();

      // Transfer to Carol, with a note for her.
      await a.page.getByTestId("transfer").click();
      const dialog = a.page.getByTestId("transfer-dialog");
      const target = dialog.locator('[data-testid="transfer-agent"][data-username="carol"]');
      await target.waitFor();
      await target.click();
      await dialog.getByTestId("transfer-note").fill("VIP customer, please refund the second payment");
      await screenshot(a.page, "console-transfer");
      await dialog.getByTestId("transfer-submit").click();
      await dialog.waitFor({ state: "detached" });

      // Bob: the conversation is gone, and the console says where it went.
      await customerRow(a.page, name).waitFor({ state: "detached" });
      await a.page.getByTestId("console-banner").filter({ hasText: "transferred to Carol Wang" }).waitFor();

      // Carol: the customer is hers, with the whole history and both notes.
      await customerRow(b.page, name).click();
      await messageWith(b.page, "I need help with an invoice").waitFor();
      const bobsMessage = messageWith(b.page, "Let me get a specialist for you");
      await bobsMessage.waitFor();
      await bobsMessage.getByText("Bob Li").waitFor();
      await b.page.getByTestId("note").filter({ hasText: "Invoice #991 was paid twice" }).waitFor();
      await b.page.getByTestId("note").filter({ hasText: "VIP customer, please refund the second payment" }).waitFor();
      await b.page.getByTestId("system-message").filter({ hasText: "Carol Wang" }).waitFor();
      await screenshot(b.page, "console-after-transfer");

      // The customer sees the system message, never the notes, and talks to Carol now.
      await visitor.page.getByTestId("system-message").filter({ hasText: "Carol Wang" }).waitFor();
      assert.equal(await visitor.page.getByTestId("note").count(), 0);
      assert.equal(await visitor.page.getByText("Invoice #991").count(), 0);
      assert.equal(await visitor.page.getByText("VIP customer").count(), 0);
      await visitor.page.getByTestId("agent-state").filter({ hasText: "Carol Wang" }).waitFor();
      await send(b.page, "Hi, Carol here. I'll refund it now.");
      await messageWith(visitor.page, "Hi, Carol here.").waitFor();
      await send(visitor.page, "Thank you Carol");
      await messageWith(b.page, "Thank you Carol").waitFor();
      await screenshot(visitor.page, "chat-after-transfer");
    } finally {
      await visitor.ctx.close();
      await a.ctx.close();
      await b.ctx.close();
    }
  });
});

describe("resolve and rate", () => {
  it("ends the conversation, takes the customer's rating, and the report shows it", async (t) => {
    if (needs(t, "A", "C")) return;
    const dana = await createAgent(kefu, "dana", "Dana Park");
    const agent = await consoleFor("dana", dana.password);
    const visitor = await visitorWriting("Can I change my delivery address?");
    const adminCtx = await newContext(browser);
    const admin = await adminCtx.newPage();
    try {
      const name = visitor.user.displayName;
      await customerRow(agent.page, name).click();
      await messageWith(agent.page, "Can I change my delivery address?").waitFor();
      await send(agent.page, "Done, it ships to the new address.");
      await messageWith(visitor.page, "Done, it ships to the new address.").waitFor();

      // Resolve: the conversation leaves the agent's list.
      await agent.page.getByTestId("resolve").click();
      await customerRow(agent.page, name).waitFor({ state: "detached" });
      await agent.page.getByTestId("console-banner").filter({ hasText: "resolved" }).waitFor();

      // The customer sees that it ended and rates it 4 with a comment.
      await visitor.page.getByTestId("conversation-ended").waitFor();
      const rating = visitor.page.getByTestId("rating");
      await rating.waitFor();
      await screenshot(visitor.page, "chat-rating");
      await rating.locator('label:has([data-testid="star-4"])').click();
      await rating.getByTestId("rating-comment").fill("Quick and friendly");
      await rating.getByTestId("rating-submit").click();
      await rating.getByTestId("rating-thanks").waitFor();

      // The old messages stay, with the divider; the next message starts a new conversation, which
      // starts at seq 1 again: the agent sees only the new message.
      await send(visitor.page, "One more question");
      await messageWith(visitor.page, "One more question").waitFor();
      await visitor.page.locator('[data-testid="message"][data-status="sent"], [data-testid="message"][data-status="read"]').filter({ hasText: "One more question" }).waitFor();
      await messageWith(visitor.page, "Can I change my delivery address?").waitFor();
      await visitor.page.getByTestId("conversation-ended").waitFor();
      await customerRow(agent.page, name).click();
      await messageWith(agent.page, "One more question").waitFor();
      assert.equal(await agent.page.getByTestId("message").filter({ hasText: "Can I change my delivery address?" }).count(), 0);
      await send(agent.page, "Sure, go ahead");
      await messageWith(visitor.page, "Sure, go ahead").waitFor();

      // A reload keeps both conversations apart, in order, the ended one above the divider.
      await visitor.page.reload();
      await messageWith(visitor.page, "Sure, go ahead").waitFor();
      await messageWith(visitor.page, "Done, it ships to the new address.").waitFor();
      await visitor.page.getByTestId("conversation-ended").waitFor();
      const texts = await visitor.page.$$eval('[data-testid="message-content"], [data-testid="conversation-ended"]', (els) =>
        els.map((e) => e.textContent.trim()),
      );
      assert.deepEqual(texts, [
        "Can I change my delivery address?",
        "Done, it ships to the new address.",
        "This conversation has ended",
        "One more question",
        "Sure, go ahead",
      ]);

      // The admin's report shows the rating for Dana.
      await signIn(admin, ui.url, "/admin", "admin", kefu.adminPassword);
      const row = admin.locator('[data-testid="report-row"][data-username="dana"]');
      await row.waitFor();
      await row.getByTestId("report-csat").filter({ hasText: "4.0" }).waitFor();
      await admin.getByTestId("report-total").waitFor();
      await admin.locator("#reports").scrollIntoViewIfNeeded();
      await screenshot(admin, "admin-reports");

      // The rated conversation among the resolved ones, with its 4 stars; its transcript as text.
      const { token } = await storedSession(visitor.page, "visitor");
      const { conversations } = await (await fetch(`${kefu.url}/api/conversations`, { headers: { authorization: `Bearer ${token}` } })).json();
      const rated = conversations.find((c) => c.status === "resolved");
      assert.equal(rated?.rating, 4);
      const finder = admin.getByTestId("conversations");
      await finder.getByLabel("Status").selectOption("resolved");
      const found = finder.locator(`[data-testid="conversation-row"][data-id="${rated.id}"]`);
      await found.getByLabel("Rated 4 of 5").waitFor();
      const [download] = await Promise.all([admin.waitForEvent("download"), found.getByTestId("export-text").click()]);
      assert.equal(download.suggestedFilename(), `conversation-${rated.id}.txt`);
      const chunks = [];
      for await (const chunk of await download.createReadStream()) chunks.push(chunk);
      const text = Buffer.concat(chunks).toString("utf8");
      assert.match(text, /Dana Park: Done, it ships to the new address\./);
      assert.doesNotMatch(text, /One more question/);
      await finder.getByTestId("export-outcome").filter({ hasText: "Saved" }).waitFor();
    } finally {
      await adminCtx.close();
      await visitor.ctx.close();
      await agent.ctx.close();
    }
  });
});

describe("the queue", () => {
  it("tells a waiting customer its place when every agent is full", async (t) => {
    if (needs(t, "A")) return;
    const erin = await createAgent(kefu, "erin", "Erin Wu");
    // The admin sets Erin's capacity to 1 in the agent list.
    const adminCtx = await newContext(browser);
    const admin = await adminCtx.newPage();
    await signIn(admin, ui.url, "/admin", "admin", kefu.adminPassword);
    const capacity = admin.locator('[data-testid="agent-row"][data-username="erin"]').getByTestId("agent-capacity");
    await capacity.fill("1");
    await capacity.press("Enter");
    await admin.getByTestId("toggle-outcome").filter({ hasText: "Erin Wu now takes one conversation at a time" }).waitFor();
    await admin.reload();
    assert.equal(await capacity.inputValue(), "1");

    const agent = await consoleFor("erin", erin.password);
    const first = await visitorWriting("First in line");
    const secondCtx = await newContext(browser);
    const second = await secondCtx.newPage();
    try {
      await customerRow(agent.page, first.user.displayName).waitFor();
      await first.page.getByTestId("agent-state").filter({ hasText: "Erin Wu" }).waitFor();

      // Erin is full: the second customer's first message waits, first in line.
      await second.goto(`${ui.url}/chat`);
      await second.getByTestId("welcome").waitFor();
      await send(second, "Anyone there?");
      const queued = second.getByTestId("queued");
      await queued.filter({ hasText: /You are number 1 in line — about \d+ min/ }).waitFor();
      await screenshot(second, "chat-queue-position");

      // Erin resolves the first conversation: the second customer is hers at once.
      await customerRow(agent.page, first.user.displayName).click();
      await agent.page.getByTestId("resolve").click();
      await customerRow(agent.page, first.user.displayName).waitFor({ state: "detached" });
      await queued.waitFor({ state: "detached" });
      await second.getByTestId("agent-state").filter({ hasText: "Erin Wu" }).waitFor();
      await customerRow(agent.page, "Anyone there?").waitFor();

      // Away in one tab: the other tab follows, and a reload keeps it (the server keeps it).
      const other = await agent.ctx.newPage();
      await other.goto(`${ui.url}/console`);
      await other.locator('[data-testid="status-switch"][data-status="available"]').waitFor();
      await agent.page.getByTestId("status-switch").click();
      await agent.page.locator('[data-testid="status-switch"][data-status="away"]').waitFor();
      await other.locator('[data-testid="status-switch"][data-status="away"]').waitFor();
      await other.reload();
      await other.locator('[data-testid="status-switch"][data-status="away"]').waitFor();
      await admin.locator('[data-testid="agent-row"][data-username="erin"][data-status="away"]').waitFor();
    } finally {
      await secondCtx.close();
      await first.ctx.close();
      await agent.ctx.close();
      await adminCtx.close();
    }
  });
});

describe("attachments", () => {
  /** A valid w×h PNG, all red. */
  function png(w, h) {
    const chunk = (type, data) => {
      const len = Buffer.alloc(4);
      len.writeUInt32BE(data.length);
      const body = Buffer.concat([Buffer.from(type, "ascii"), data]);
      const crc = Buffer.alloc(4);
      crc.writeUInt32BE(zlib.crc32(body));
      return Buffer.concat([len, body, crc]);
    };
    const ihdr = Buffer.alloc(13);
    ihdr.writeUInt32BE(w, 0);
    ihdr.writeUInt32BE(h, 4);
    ihdr.set([8, 2, 0, 0, 0], 8);
    const row = Buffer.concat([Buffer.from([0]), Buffer.alloc(w * 3, Buffer.from([220, 40, 40]))]);
    const raw = Buffer.concat(Array.from({ length: h }, () => row));
    return Buffer.concat([
      Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
      chunk("IHDR", ihdr),
      chunk("IDAT", zlib.deflateSync(raw)),
      chunk("IEND", Buffer.alloc(0)),
    ]);
  }
  const PNG = png(400, 300);

  it("are uploaded with the paperclip and shown as a thumbnail or a download link", async (t) => {
    if (needs(t, "attachments")) return;
    const fay = await createAgent(kefu, "fay", "Fay Zhou");
    const agent = await consoleFor("fay", fay.password);
    const visitor = await visitorWriting("Here is a photo of the damage");
    try {
      await customerRow(agent.page, visitor.user.displayName).click();
      await messageWith(agent.page, "Here is a photo of the damage").waitFor();

      // The customer sends an image: both sides show it as a thumbnail that loads (the URL carries
      // the token), and a click opens it in a new tab.
      await visitor.page.getByTestId("attach-input").setInputFiles({ name: "damage.png", mimeType: "image/png", buffer: PNG });
      for (const page of [visitor.page, agent.page]) {
        const img = page.getByTestId("attachment-image").locator("img");
        await img.waitFor();
        await page.waitForFunction(() => {
          const el = document.querySelector('[data-testid="attachment-image"] img');
          return el instanceof HTMLImageElement && el.complete && el.naturalWidth === 400;
        });
        const href = await page.getByTestId("attachment-image").getAttribute("href");
        assert.match(href, /[?&]token=/);
        assert.equal(await page.getByTestId("attachment-image").getAttribute("target"), "_blank");
      }

      // The agent sends a text file: the customer gets a download link with its name and size.
      await agent.page.getByTestId("attach-input").setInputFiles({ name: "return-label.txt", mimeType: "text/plain", buffer: Buffer.from("RETURN TO: kefu\n") });
      const link = visitor.page.getByTestId("attachment-file");
      await link.filter({ hasText: "return-label.txt" }).waitFor();
      await link.filter({ hasText: "16 B" }).waitFor();
      const body = await visitor.page.evaluate(async (url) => (await fetch(url)).text(), await link.getAttribute("href"));
      assert.equal(body, "RETURN TO: kefu\n");

      // A type outside the allowlist is refused, and the composer says why.
      await visitor.page.getByTestId("attach-input").setInputFiles({ name: "tool.exe", mimeType: "application/x-msdownload", buffer: Buffer.from("MZ") });
      await visitor.page.getByTestId("composer-problem").waitFor();
      await screenshot(visitor.page, "chat-attachments");
      await screenshot(agent.page, "console-attachments");
    } finally {
      await visitor.ctx.close();
      await agent.ctx.close();
    }
  });
});
