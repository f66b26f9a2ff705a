// The screenshots of web/README.md's "When nobody answers" (issue 15), made against the real server:
// the widget open, busy, away and closed (English and Chinese), the offline form sent, the agent's
// console with a conversation left offline, and the admin's business hours. Not part of the suite:
//
//   npm run build && KEFU_BIN=../target/debug/kefu node e2e/screenshots.mjs
//
// writes docs/screenshots/*.png (committed; run it again when these screens change). The Chinese ones
// need a CJK font for Chromium (Debian: `apt-get install -y fonts-wqy-microhei`).
import { mkdir } from "node:fs/promises";
import path from "node:path";
import { adminToken, createAgent, launchBrowser, newContext, signIn, smtpSink, startKefu, uiFor, webRoot } from "./harness.mjs";

const outDir = path.join(webRoot, "docs", "screenshots");
const WIDGET = { viewport: { width: 400, height: 680 } };
const DESKTOP = { viewport: { width: 1280, height: 800 } };

async function api(kefu, method, pathName, token, body) {
  const res = await fetch(`${kefu.url}${pathName}`, {
    method,
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await res.json().catch(() => null);
  if (!res.ok) throw new Error(`${method} ${pathName}: ${res.status} ${JSON.stringify(data)}`);
  return data;
}

async function waitForState(kefu, state) {
  const end = Date.now() + 15_000;
  for (;;) {
    const a = await api(kefu, "GET", "/api/availability");
    if (a.state === state) return a;
    if (Date.now() > end) throw new Error(`availability stayed ${a.state}, expected ${state}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

async function shoot(target, name, options = {}) {
  const file = path.join(outDir, `${name}.png`);
  await target.screenshot({ path: file, animations: "disabled", caret: "hide", ...options });
  console.log(`wrote ${path.relative(webRoot, file)}`);
}

// A mailbox for kefu, so that the widget says what a shop with e-mail set up says.
const sink = await smtpSink();
const kefu = await startKefu({ env: sink.env });
const ui = await uiFor(kefu);
const browser = await launchBrowser();
await mkdir(outDir, { recursive: true });
const contexts = [];
async function chat(options, query = "") {
  const ctx = await newContext(browser, { ...WIDGET, ...options });
  contexts.push(ctx);
  const page = await ctx.newPage();
  await page.goto(`${ui.url}/chat${query}`);
  await page.getByTestId("messages").waitFor({ state: "attached" });
  return page;
}
const EN = { locale: "en-US", timezoneId: "America/New_York" };
const ZH = { locale: "zh-CN", timezoneId: "Asia/Shanghai" };

try {
  const admin = await adminToken(kefu);

  // Away: nobody online. The form in place of the composer.
  await waitForState(kefu, "away");
  for (const [lang, options, text] of [
    ["en", EN, "Nobody is available right now"],
    ["zh", ZH, "现在没有客服在线"],
  ]) {
    const page = await chat(options);
    await page.getByTestId("availability").filter({ hasText: text }).waitFor();
    await page.getByTestId("offline-submit").waitFor();
    await page.waitForFunction(() => !document.querySelector('[data-testid="offline-submit"]')?.disabled);
    await shoot(page, `widget-away-${lang}`);
  }

  // The form sent: the confirmation, the message in the conversation.
  {
    const page = await chat(EN);
    const form = page.getByTestId("offline-form");
    await form.waitFor();
    await page.getByLabel("Your name").fill("Dana Kim");
    await page.getByLabel("E-mail").fill("dana@example.com");
    await page.getByLabel("Phone (optional)").fill("+1 (555) 010-0199");
    await form.getByRole("textbox", { name: "Message" }).fill("Please call me about invoice 77 — it was charged twice.");
    await page.getByTestId("offline-submit").click();
    await page.getByTestId("offline-sent").waitFor();
    await page.getByTestId("availability").filter({ hasText: "dana@example.com" }).waitFor();
    await page.locator(":focus").evaluate((el) => el.blur());
    await shoot(page, "widget-offline-sent-en");
    // Dana leaves: the agent sees a customer who is gone and has left her e-mail and phone.
    await page.context().close();
  }

  // Closed: open 09:00–18:00 in Shanghai, but closed today and tomorrow.
  {
    const day = (offset) => new Date(Date.now() + 8 * 3600_000 + offset * 86_400_000).toISOString().slice(0, 10);
    const weekly = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"].map((d) => ({ day: d, open: "09:00", close: "18:00" }));
    await api(kefu, "PUT", "/api/admin/hours", admin, { enabled: true, timeZone: "Asia/Shanghai", weekly, closedDays: [day(0), day(1)] });
    await waitForState(kefu, "closed");
    for (const [lang, options, text] of [
      ["en", EN, "We're closed right now"],
      ["zh", { ...ZH, timezoneId: "Europe/Berlin" }, "现在不是营业时间"],
    ]) {
      const page = await chat(options);
      await page.getByTestId("availability").filter({ hasText: text }).waitFor();
      await page.getByTestId("offline-form").waitFor();
      await page.waitForFunction(() => !document.querySelector('[data-testid="offline-submit"]')?.disabled);
      await shoot(page, `widget-closed-${lang}`);
    }
    await api(kefu, "PUT", "/api/admin/hours", admin, { enabled: false, timeZone: "Asia/Shanghai", weekly: [], closedDays: [] });
  }

  // An agent signs in: Dana's conversation, left offline, comes to her with its badge and contact.
  const quinn = await createAgent(kefu, "quinn", "Quinn Hale");
  const agentCtx = await newContext(browser, DESKTOP);
  contexts.push(agentCtx);
  const agent = await agentCtx.newPage();
  await signIn(agent, ui.url, "/console", "quinn", quinn.password);
  const row = agent.getByTestId("customer").filter({ hasText: "invoice 77" });
  await row.getByTestId("offline-badge").waitFor();
  await row.click();
  await agent.getByTestId("peer-contact").getByTestId("peer-phone").waitFor();
  await agent.mouse.move(0, 0);
  await shoot(agent, "console-left-offline");

  // Open: an agent with room. The welcome and the composer, nothing to warn about.
  await waitForState(kefu, "open");
  for (const [lang, options] of [
    ["en", EN],
    ["zh", ZH],
  ]) {
    const page = await chat(options);
    await page.getByTestId("welcome").waitFor();
    await page.getByTestId("composer").waitFor();
    await shoot(page, `widget-open-${lang}`);
  }

  // Busy: Quinn takes one conversation at a time and has Dana's. The real wait, before writing.
  await api(kefu, "PATCH", `/api/agents/${quinn.id}`, admin, { capacity: 1 });
  await waitForState(kefu, "busy");
  for (const [lang, options, text] of [
    ["en", EN, "All our agents are busy"],
    ["zh", ZH, "客服都在忙"],
  ]) {
    const page = await chat(options);
    await page.getByTestId("availability").filter({ hasText: text }).waitFor();
    await shoot(page, `widget-busy-${lang}`);
  }

  // The admin's business hours: weekdays, Friday past midnight, a closed day; saved.
  {
    const ctx = await newContext(browser, { viewport: { width: 1280, height: 1080 } });
    contexts.push(ctx);
    const page = await ctx.newPage();
    await signIn(page, ui.url, "/admin", "admin", kefu.adminPassword);
    const hours = page.getByTestId("hours");
    await hours.getByTestId("hours-save").waitFor();
    await hours.getByTestId("hours-enabled").check();
    await hours.getByTestId("hours-zone").selectOption("Asia/Shanghai");
    for (const d of ["mon", "tue", "wed", "thu", "fri"]) {
      const day = hours.locator(`[data-testid="hours-day"][data-day="${d}"]`);
      await day.getByTestId("hours-add").click();
      await day.getByTestId("hours-open").last().fill("09:00");
      await day.getByTestId("hours-close").last().fill("18:00");
    }
    const fri = hours.locator('[data-testid="hours-day"][data-day="fri"]');
    await fri.getByTestId("hours-add").click();
    await fri.getByTestId("hours-open").last().fill("20:00");
    await fri.getByTestId("hours-close").last().fill("02:00");
    await hours.getByTestId("hours-new-date").fill("2026-12-25");
    await hours.getByTestId("hours-add-date").click();
    await hours.getByTestId("hours-save").click();
    await hours.getByTestId("hours-saved").waitFor();
    // The section just under the page's sticky top bar, with the side navigation beside it.
    await page.evaluate(() => {
      const top = document.getElementById("hours").getBoundingClientRect().top + window.scrollY;
      const bar = document.querySelector("header")?.getBoundingClientRect().height ?? 0;
      window.scrollTo(0, top - bar - 12);
    });
    await page.mouse.move(0, 0);
    await shoot(page, "admin-hours");
  }
} finally {
  for (const ctx of contexts) await ctx.close().catch(() => undefined);
  await browser.close();
  await ui.close();
  await kefu.close();
  sink.close();
}
