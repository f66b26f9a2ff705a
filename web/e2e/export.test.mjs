// Browser tests of exporting a conversation where it is: the agent's console exports the open
// conversation as a text file, and the admin page finds a customer's conversations by name (or
// e-mail, or id), pages through them and exports one as text and as JSON.
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { after, before, describe, it } from "node:test";
import { io } from "socket.io-client";
import { createAgent, launchBrowser, newContext, screenshot, signIn, startKefu, uiFor } from "./harness.mjs";

const MOBILE = { viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true };

let kefu;
let ui;
let browser;
const sockets = [];

before(async () => {
  kefu = await startKefu();
  ui = await uiFor(kefu);
  browser = await launchBrowser();
});

after(async () => {
  for (const s of sockets) s.close();
  await browser?.close();
  await ui?.close();
  await kefu?.close();
});

async function createVisitor(name, email) {
  const res = await fetch(`${kefu.url}/api/visitors`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify({ name, ...(email ? { email } : {}) }),
  });
  assert.equal(res.status, 201, `visitor ${name}: ${res.status}`);
  return res.json();
}

/**
 * A customer who logs in and may write, over the official client. Its first message starts its
 * conversation; one who only logs in has none.
 */
async function customerWrites(name, email, text) {
  const v = await createVisitor(name, email);
  const s = io(kefu.url, { auth: { token: v.token }, transports: ["websocket"] });
  sockets.push(s);
  const login = await s.timeout(10_000).emitWithAck("login", { userId: v.user.id });
  assert.equal(login.ok, true, JSON.stringify(login));
  assert.equal(login.conversationId, null, JSON.stringify(login));
  let conversationId = null;
  if (text) {
    const ack = await s.timeout(10_000).emitWithAck("private_message", { content: text, clientMsgId: `c-${name}` });
    assert.equal(ack.ok, true, JSON.stringify(ack));
    assert.ok(ack.started, `the first message started the conversation: ${JSON.stringify(ack)}`);
    conversationId = ack.conversationId;
  }
  return { ...v, conversationId, socket: s };
}

/** Clicks `button` and returns the file the page saves: its suggested name and its text. */
async function download(page, button) {
  const [file] = await Promise.all([page.waitForEvent("download", { timeout: 15_000 }), button.click()]);
  const text = await readFile(await file.path(), "utf8");
  return { name: file.suggestedFilename(), text };
}

const messageWith = (page, text) => page.getByTestId("message").filter({ hasText: text }).last();

describe("export where the conversation is", () => {
  it("the console exports the open conversation as text", async () => {
    const carol = await createAgent(kefu, "carol", "Carol Diaz");
    const agentCtx = await newContext(browser);
    const agent = await agentCtx.newPage();
    try {
      await signIn(agent, ui.url, "/console", "carol", carol.password);
      await agent.getByText("No conversations yet").waitFor();
      const dana = await customerWrites("Dana Whitfield", "dana@shop.example", "My parcel 7781 never arrived");

      const customer = agent.getByTestId("customer").filter({ hasText: "Dana Whitfield" });
      await customer.click();
      await messageWith(agent, "My parcel 7781 never arrived").waitFor();
      await agent.getByTestId("composer").fill("Sorry Dana, I am checking parcel 7781 now");
      await agent.getByTestId("composer").press("Enter");
      await agent
        .locator('[data-testid="message"][data-status="sent"], [data-testid="message"][data-status="read"]')
        .filter({ hasText: "checking parcel 7781" })
        .waitFor();

      const exportButton = agent.getByRole("button", { name: "Export" });
      await exportButton.waitFor();
      await screenshot(agent, "console-export-desktop");
      const file = await download(agent, exportButton);
      assert.equal(file.name, `conversation-${dana.conversationId}.txt`);
      assert.match(file.text, /Dana Whitfield/);
      assert.match(file.text, /Dana Whitfield: My parcel 7781 never arrived/);
      assert.match(file.text, /Carol Diaz: Sorry Dana, I am checking parcel 7781 now/);
      // The customer's words come before the answer.
      assert.ok(file.text.indexOf("never arrived") < file.text.indexOf("checking parcel"));

      // At phone width the button keeps its name (the label is hidden, the icon stays).
      await agent.setViewportSize({ width: 360, height: 740 });
      await agent.getByRole("button", { name: "Export" }).waitFor();
      await screenshot(agent, "console-export-mobile");
    } finally {
      await agentCtx.close();
    }
  });

  it("the admin finds a customer's conversation by name, pages on, and exports it as text and JSON", async () => {
    const erin = await customerWrites("Erin Okafor", "erin.okafor@shop.example", "Do you ship to Lagos?");
    // Enough other conversations for a second page: 24 shoppers write; 12 more only log in, and
    // start none.
    for (let i = 1; i <= 36; i++) await customerWrites(`Shopper ${String(i).padStart(2, "0")}`, null, i % 3 ? `question ${i}` : null);

    const ctx = await newContext(browser);
    const admin = await ctx.newPage();
    try {
      await signIn(admin, ui.url, "/admin", "admin", kefu.adminPassword);
      // The admin account takes no conversations, and says so.
      await admin
        .locator('[data-testid="agent-row"][data-username="admin"] [data-testid="agent-status"]')
        .filter({ hasText: "Takes no conversations" })
        .waitFor();

      const section = admin.getByTestId("conversations");
      const rows = section.getByTestId("conversation-row");
      const summary = section.getByTestId("conversation-summary");
      // Every conversation, newest first, a page at a time.
      await summary.filter({ hasText: "25 conversations shown. There are more." }).waitFor();
      await section.getByRole("button", { name: "More conversations" }).click();
      // Dana's, Erin's and the 24 shoppers' who wrote; none of those who did not.
      await summary.filter({ hasText: "26 conversations shown." }).waitFor();
      assert.equal(await rows.count(), 26);

      // By name, from the keyboard: the search box has its label, Enter searches.
      const box = section.getByRole("searchbox", { name: "Search conversations" });
      await box.focus();
      await admin.keyboard.type("okafor");
      await admin.keyboard.press("Enter");
      await summary.filter({ hasText: "1 conversation shown." }).waitFor();
      const row = rows.filter({ hasText: "Erin Okafor" });
      await row.waitFor();
      assert.equal(await rows.count(), 1);
      await row.getByText("erin.okafor@shop.example").waitFor();
      assert.equal(await row.getAttribute("data-id"), erin.conversationId);
      assert.equal(await row.getAttribute("data-status"), "open");
      assert.equal((await row.getByTestId("conversation-messages").textContent()).trim(), "1");
      await screenshot(admin, "admin-conversations-desktop");

      // By e-mail and by id, too; the status filter narrows it.
      await box.fill("erin.okafor@shop");
      await summary.filter({ hasText: "1 conversation shown." }).waitFor();
      await box.fill(`#${erin.conversationId}`);
      await rows.filter({ hasText: "Erin Okafor" }).waitFor();
      await section.getByLabel("Status").selectOption("resolved");
      await summary.filter({ hasText: `No conversation matches “${erin.conversationId}”.` }).waitFor();
      await section.getByLabel("Status").selectOption("open");
      await row.waitFor();

      // Export as text: the customer's words, in a file named after the conversation.
      const text = await download(admin, row.getByRole("button", { name: /as text$/ }));
      assert.equal(text.name, `conversation-${erin.conversationId}.txt`);
      assert.match(text.text, /Erin Okafor: Do you ship to Lagos\?/);
      await section.getByTestId("export-outcome").filter({ hasText: `Saved conversation-${erin.conversationId}.txt.` }).waitFor();

      // And as JSON: the structured transcript.
      const json = await download(admin, row.getByRole("button", { name: /as JSON$/ }));
      assert.equal(json.name, `conversation-${erin.conversationId}.json`);
      const data = JSON.parse(json.text);
      assert.equal(data.conversation.id, erin.conversationId);
      assert.equal(data.conversation.customer.displayName, "Erin Okafor");
      assert.deepEqual(
        data.messages.map((m) => m.content),
        ["Do you ship to Lagos?"],
      );

      // The list is read when asked: a new conversation shows after the page's Refresh.
      await section.getByLabel("Status").selectOption("all");
      await box.fill("okafor");
      await summary.filter({ hasText: "1 conversation shown." }).waitFor();
      await customerWrites("Femi Okafor", "femi@shop.example", "Same question as my sister");
      await admin.getByTestId("refresh").click();
      await summary.filter({ hasText: "2 conversations shown." }).waitFor();
      assert.equal(await rows.first().getByTestId("conversation-customer").textContent(), "Femi Okafor");

      // Phone width: the same, as cards.
      await admin.setViewportSize({ width: 360, height: 740 });
      await box.fill("shopper 0");
      // Shoppers 01–09 but 03, 06 and 09, who never wrote.
      await summary.filter({ hasText: "6 conversations shown." }).waitFor();
      await admin.locator("#conversations").evaluate((el) => el.scrollIntoView({ block: "start" }));
      await screenshot(admin, "admin-conversations-mobile");
    } finally {
      await ctx.close();
    }
  });

  it("the admin page speaks Chinese in the conversation finder", async () => {
    const ctx = await newContext(browser, { ...MOBILE, locale: "zh-CN" });
    const admin = await ctx.newPage();
    try {
      await admin.goto(`${ui.url}/admin`);
      await admin.getByLabel("用户名").fill("admin");
      await admin.getByLabel("密码").fill(kefu.adminPassword);
      await admin.getByRole("button", { name: "登录" }).click();
      const section = admin.getByTestId("conversations");
      await section.getByRole("searchbox", { name: "搜索会话" }).fill("Erin");
      await section.getByTestId("conversation-summary").filter({ hasText: "显示 1 个会话。" }).waitFor();
      await section.getByRole("button", { name: /导出为文本$/ }).waitFor();
      await admin.locator("#conversations").evaluate((el) => el.scrollIntoView({ block: "start" }));
      await screenshot(admin, "admin-conversations-zh-mobile");
    } finally {
      await ctx.close();
    }
  });
});
