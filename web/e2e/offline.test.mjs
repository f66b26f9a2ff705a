// Browser tests of issue 15, "never lose a customer when nobody answers": what the chat says when
// agents have room (open), are all full (busy: the real wait), are all gone (away) or the shop is
// closed (closed: when it opens, in the visitor's time and the shop's), in English and Chinese; the
// offline form (only what kefu does not know, checks, focus, sending, the confirmation); the agent's
// view of a conversation left offline; an invalid resume link; the transcript by e-mail (to the
// test's own SMTP server) and the resume link in that mail; the admin's business hours. They need the server's issue-15 endpoints (GET /api/availability, /api/me/contact,
// POST /api/offline-messages, /api/admin/hours; resume and transcript e-mail from the mail branch):
// against a server without them, each test is skipped and says which endpoint is missing.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { adminToken, createAgent, launchBrowser, newContext, screenshot, signIn, smtpSink, startKefu, storedSession, uiFor } from "./harness.mjs";

const MOBILE = { viewport: { width: 360, height: 740 }, isMobile: true, hasTouch: true };

let kefu;
let ui;
let browser;
/** Where kefu's mails go: without KEFU_SMTP_URL kefu sends none (the transcript is refused). */
let mailbox;
/** Which endpoints this server has, by name. */
const has = {};

async function probe(method, path, body) {
  const res = await fetch(`${kefu.url}${path}`, {
    method,
    headers: { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  // 401/400: the route exists and wants a token or a body; 404/405: it does not.
  return res.status !== 404 && res.status !== 405;
}

before(async () => {
  mailbox = await smtpSink();
  kefu = await startKefu({ env: mailbox.env });
  ui = await uiFor(kefu);
  browser = await launchBrowser();
  has.availability = await probe("GET", "/api/availability");
  has.contact = await probe("GET", "/api/me/contact");
  has.offline = await probe("POST", "/api/offline-messages", {});
  has.hours = await probe("GET", "/api/admin/hours");
  has.resume = await probe("POST", "/api/visitors/resume", { token: "x" });
  has.transcriptEmail = await probe("POST", "/api/conversations/1/transcript/email");
});

after(async () => {
  await browser?.close();
  await ui?.close();
  await kefu?.close();
  await mailbox?.close();
});

/** Skips the test unless the server has every endpoint named. */
function needs(t, ...names) {
  const missing = names.filter((n) => !has[n]);
  if (missing.length === 0) return false;
  t.skip(`the server at ${process.env.KEFU_BIN ?? "target/debug/kefu"} lacks ${missing.join(", ")} (issue 15)`);
  return true;
}

async function api(method, path, token, body) {
  const res = await fetch(`${kefu.url}${path}`, {
    method,
    headers: { "content-type": "application/json", ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await res.json().catch(() => null);
  assert.ok(res.ok, `${method} ${path}: ${res.status} ${JSON.stringify(data)}`);
  return data;
}

const availability = () => api("GET", "/api/availability");

async function setHours(hours) {
  return api("PUT", "/api/admin/hours", await adminToken(kefu), hours);
}
const ALWAYS_OPEN = { enabled: false, timeZone: "Asia/Shanghai", weekly: [], closedDays: [] };

/** A visitor with the chat open (a fresh browser context): signed in and loaded. */
async function openChat(options = {}, query = "") {
  const ctx = await newContext(browser, options);
  const page = await ctx.newPage();
  await page.goto(`${ui.url}/chat${query}`);
  await page.getByTestId("messages").waitFor({ state: "attached" });
  return { ctx, page };
}

/** An agent signed in to the console (available). */
async function agentOnline(username, displayName) {
  const a = await createAgent(kefu, username, displayName);
  const ctx = await newContext(browser);
  const page = await ctx.newPage();
  await signIn(page, ui.url, "/console", username, a.password);
  await page.getByTestId("customer-list").waitFor({ state: "attached" });
  return { ...a, ctx, page };
}

async function send(page, text) {
  const box = page.getByTestId("composer");
  await box.fill(text);
  await box.press("Enter");
}

async function waitForState(state, timeout = 10_000) {
  const end = Date.now() + timeout;
  for (;;) {
    const a = await availability();
    if (a.state === state) return a;
    if (Date.now() > end) assert.fail(`availability stayed ${a.state}, expected ${state}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/**
 * The form's message field. Not `getByLabel("Message")`: the form itself is a region named "Leave us
 * a message" (`aria-labelledby` its heading), which that substring matches too.
 */
const messageField = (page) => page.getByTestId("offline-form").getByRole("textbox", { name: "Message" });

/** The id of the element that has the focus, by its data-testid. */
const focused = (page) => page.evaluate(() => document.activeElement?.getAttribute("data-testid") ?? null);

describe("the widget when nobody answers", () => {
  it("away: the offline form in English, never a place in line, and its checks from the keyboard", async (t) => {
    if (needs(t, "availability", "contact", "offline")) return;
    await waitForState("away");
    const { ctx, page } = await openChat();
    try {
      const banner = page.getByTestId("availability");
      await banner.filter({ hasText: "Nobody is available right now" }).waitFor();
      assert.equal(await banner.getAttribute("data-state"), "away");
      assert.match(await banner.textContent(), /we reply as soon as someone is back, and by e-mail/);
      assert.equal(await page.getByText(/number \d+ in line/).count(), 0, "no place in line when nobody is there");
      assert.equal(await page.getByTestId("composer").count(), 0, "the form, not the composer");
      const form = page.getByTestId("offline-form");
      await form.waitFor();
      // Labelled fields: name, e-mail, phone (optional), message.
      await page.getByLabel("Your name").waitFor();
      await page.getByLabel("E-mail").waitFor();
      await page.getByLabel("Phone (optional)").waitFor();
      await messageField(page).waitFor();
      // One control named "Message" at a time: the form's, never the composer's beside it.
      assert.equal(await page.getByRole("textbox", { name: "Message" }).count(), 1);
      await screenshot(page, "offline-away-desktop");

      // Submitting empty, from the keyboard: errors said, focus on the first invalid field.
      await page.getByLabel("Your name").focus();
      await page.keyboard.press("Enter");
      await page.getByTestId("offline-name-error").filter({ hasText: "Please enter your name." }).waitFor();
      assert.equal(await focused(page), "offline-name");
      assert.equal(await page.getByTestId("offline-name").getAttribute("aria-invalid"), "true");
      const describedBy = await page.getByTestId("offline-name").getAttribute("aria-describedby");
      assert.ok(describedBy && (await page.locator(`#${describedBy.split(" ").pop()}`).textContent()).includes("Please enter your name."));
      assert.match(await page.getByTestId("offline-errors").textContent(), /Please correct 3 fields\./);
      assert.equal(await page.getByTestId("offline-errors").getAttribute("aria-live"), "assertive");

      // A name, a wrong e-mail: focus goes to the e-mail.
      await page.keyboard.type("Ann Lee");
      await page.getByTestId("offline-submit").press("Enter");
      await page.getByTestId("offline-email-error").filter({ hasText: "Please enter your e-mail address." }).waitFor();
      assert.equal(await focused(page), "offline-email");
      await page.keyboard.type("ann@");
      await page.getByTestId("offline-email-error").filter({ hasText: "like name@example.com" }).waitFor();
      await page.keyboard.type("example.com");
      await page.getByTestId("offline-email-error").waitFor({ state: "detached" });
      assert.equal(await page.getByTestId("offline-name").getAttribute("aria-invalid"), "false");

      // The message, then send with Tab and Enter only.
      await page.keyboard.press("Tab"); // phone
      await page.keyboard.type("+86 10 1234 5678");
      await page.keyboard.press("Tab"); // message
      await page.keyboard.type("My parcel 5521 never arrived.");
      await page.keyboard.press("Tab");
      assert.equal(await focused(page), "offline-submit");
      await page.keyboard.press("Enter");

      const sent = page.getByTestId("offline-sent");
      await sent.filter({ hasText: "We'll reply here and by e-mail to ann@example.com." }).waitFor();
      assert.equal((await page.getByTestId("offline-sent-content").textContent()).trim(), "My parcel 5521 never arrived.");
      await page.getByTestId("message").filter({ hasText: "My parcel 5521 never arrived." }).waitFor();
      await page.getByTestId("offline-form").waitFor({ state: "detached" });
      await page.getByTestId("availability").filter({ hasText: "by e-mail to ann@example.com" }).waitFor();
      assert.equal(await focused(page), "offline-sent", "focus moves to the confirmation");
      await screenshot(page, "offline-sent-desktop");

      // Kefu keeps it: the contact, and a conversation left offline that waits.
      const { token } = await storedSession(page, "visitor");
      assert.deepEqual(await api("GET", "/api/me/contact", token), { name: "Ann Lee", email: "ann@example.com", phone: "+86 10 1234 5678" });
      const [c] = (await api("GET", "/api/conversations", token)).conversations;
      assert.equal(c.offline, true);
      assert.equal(c.status, "open");

      // After a reload the chat says it waits, and asks nothing again.
      await page.reload();
      await page.getByTestId("availability").filter({ hasText: "Your message is with us" }).waitFor();
      assert.equal(await page.getByTestId("offline-form").count(), 0);
    } finally {
      await ctx.close();
    }
  });

  it("away, in Chinese, on a phone: the form's words and errors", async (t) => {
    if (needs(t, "availability", "contact", "offline")) return;
    await waitForState("away");
    const { ctx, page } = await openChat({ ...MOBILE, locale: "zh-CN" });
    try {
      await page.getByTestId("availability").filter({ hasText: "现在没有客服在线" }).waitFor();
      await page.getByLabel("您的姓名").waitFor();
      await page.getByLabel("电子邮箱").waitFor();
      await page.getByLabel("留言内容").waitFor();
      await page.getByTestId("offline-submit").click();
      await page.getByTestId("offline-name-error").filter({ hasText: "请填写您的姓名。" }).waitFor();
      await page.getByTestId("offline-errors").filter({ hasText: "有 3 项需要修改。" }).waitFor();
      await screenshot(page, "offline-away-zh-mobile");
      await page.getByLabel("您的姓名").fill("王小明");
      await page.getByLabel("电子邮箱").fill("wang@example.cn");
      await page.getByLabel("留言内容").fill("请问周末发货吗？");
      await page.getByTestId("offline-submit").click();
      await page.getByTestId("offline-sent").filter({ hasText: "wang@example.cn" }).waitFor();
      await page.getByTestId("message").filter({ hasText: "请问周末发货吗？" }).waitFor();
    } finally {
      await ctx.close();
    }
  });

  it("a known customer is asked only for what kefu does not know", async (t) => {
    if (needs(t, "availability", "contact", "offline")) return;
    await waitForState("away");
    const session = await api("POST", "/api/visitors", undefined, { name: "Carla Diaz", email: "carla@example.com" });
    const ctx = await newContext(browser);
    await ctx.addInitScript((s) => window.localStorage.setItem("kefu.session.visitor", s), JSON.stringify(session));
    const page = await ctx.newPage();
    try {
      await page.goto(`${ui.url}/chat`);
      await page.getByTestId("offline-form").waitFor();
      await page.getByTestId("offline-known-email").filter({ hasText: "We'll reply to carla@example.com." }).waitFor();
      assert.equal(await page.getByTestId("offline-name").count(), 0);
      assert.equal(await page.getByTestId("offline-email").count(), 0);
      await page.getByTestId("offline-phone").waitFor();
      await messageField(page).fill("Can I change my delivery address?");
      await page.getByTestId("offline-submit").click();
      await page.getByTestId("offline-sent").filter({ hasText: "carla@example.com" }).waitFor();
    } finally {
      await ctx.close();
    }
  });

  it("open, then the agent goes away: what was typed in the composer moves into the form", async (t) => {
    if (needs(t, "availability", "contact", "offline")) return;
    const agent = await agentOnline("olga", "Olga Berg");
    const { ctx, page } = await openChat();
    try {
      await waitForState("open");
      await page.getByTestId("welcome").waitFor();
      assert.equal(await page.getByTestId("availability").count(), 0, "open: nothing to warn about");
      await page.getByTestId("composer").fill("Do you have this in blue?");
      // Olga signs out: nobody is available; the chat sees it within 30 s.
      await agent.ctx.close();
      await waitForState("away");
      await page.getByTestId("offline-form").waitFor({ timeout: 40_000 });
      assert.equal(await page.getByTestId("offline-message").inputValue(), "Do you have this in blue?");
      assert.equal(await page.getByRole("textbox", { name: "Message" }).count(), 1, "the composer went with the form");
    } finally {
      await ctx.close();
    }
  });

  it("busy: the real wait before the first message, then the place in line", async (t) => {
    if (needs(t, "availability")) return;
    const agent = await agentOnline("paula", "Paula Reyes");
    const token = await adminToken(kefu);
    await api("PATCH", `/api/agents/${agent.id}`, token, { capacity: 1 });
    const first = await openChat();
    const second = await openChat();
    try {
      await send(first.page, "I'm first");
      await agent.page.getByTestId("customer").filter({ hasText: "I'm first" }).waitFor();
      const a = await waitForState("busy");
      await second.page.reload();
      const banner = second.page.getByTestId("availability");
      await banner.filter({ hasText: "All our agents are busy" }).waitFor();
      assert.equal(await banner.getAttribute("data-state"), "busy");
      assert.match(await banner.textContent(), new RegExp(`number ${a.queueLength + 1} in line`));
      await screenshot(second.page, "availability-busy-desktop");
      await send(second.page, "I'll wait");
      await second.page.getByTestId("queued").filter({ hasText: /You are number \d+ in line — about \d+ min/ }).waitFor();
    } finally {
      await first.ctx.close();
      await second.ctx.close();
      await agent.ctx.close();
    }
  });

  it("closed: when the shop opens, in the visitor's time and the shop's, in both languages", async (t) => {
    if (needs(t, "availability", "hours")) return;
    // Closed today and tomorrow in Shanghai; open around the clock otherwise.
    const day = (offset) => new Date(Date.now() + 8 * 3600_000 + offset * 86_400_000).toISOString().slice(0, 10);
    const weekly = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"].map((d) => ({ day: d, open: "00:00", close: "24:00" }));
    await setHours({ enabled: true, timeZone: "Asia/Shanghai", weekly, closedDays: [day(0), day(1)] });
    const en = await openChat({ timezoneId: "America/New_York" });
    const zh = await openChat({ timezoneId: "Europe/Berlin", locale: "zh-CN" });
    try {
      const a = await waitForState("closed");
      assert.equal(typeof a.opensAt, "number");
      const banner = en.page.getByTestId("availability");
      await banner.filter({ hasText: "We're closed right now" }).waitFor();
      assert.equal(await banner.getAttribute("data-state"), "closed");
      const text = await banner.textContent();
      assert.match(text, /We open .* your time \(.*00:00 in Asia\/Shanghai\)/);
      await en.page.getByTestId("offline-form").waitFor();
      await screenshot(en.page, "availability-closed-desktop");
      await zh.page.getByTestId("availability").filter({ hasText: "现在不是营业时间" }).waitFor();
      assert.match(await zh.page.getByTestId("availability").textContent(), /Asia\/Shanghai 时间/);
      await screenshot(zh.page, "availability-closed-zh-desktop");
    } finally {
      await setHours(ALWAYS_OPEN);
      await en.ctx.close();
      await zh.ctx.close();
    }
  });
});

describe("the agent's view of a conversation left offline", () => {
  it("lists it with a Left offline badge and shows the customer's e-mail and phone", async (t) => {
    if (needs(t, "availability", "contact", "offline")) return;
    await waitForState("away");
    const { ctx, page } = await openChat();
    const agentCtx = await newContext(browser);
    try {
      await page.getByTestId("offline-form").waitFor();
      await page.getByLabel("Your name").fill("Dana Kim");
      await page.getByLabel("E-mail").fill("dana@example.com");
      await page.getByLabel("Phone (optional)").fill("+1 (555) 010-0199");
      await messageField(page).fill("Please call me about invoice 77.");
      await page.getByTestId("offline-submit").click();
      await page.getByTestId("offline-sent").waitFor();

      const quinn = await createAgent(kefu, "quinn", "Quinn Hale");
      const agent = await agentCtx.newPage();
      await signIn(agent, ui.url, "/console", "quinn", quinn.password);
      const row = agent.getByTestId("customer").filter({ hasText: "Please call me about invoice 77." });
      await row.waitFor();
      await row.getByTestId("offline-badge").filter({ hasText: "Left offline" }).waitFor();
      await row.click();
      const contact = agent.getByTestId("peer-contact");
      await contact.getByTestId("offline-badge").waitFor();
      // The e-mail and phone need the member list to carry them (see the web report on issue 15).
      assert.equal((await contact.getByTestId("peer-email").textContent()).trim(), "dana@example.com");
      assert.equal((await contact.getByTestId("peer-phone").textContent()).trim(), "+1 (555) 010-0199");
      await screenshot(agent, "console-left-offline-desktop");
    } finally {
      await agentCtx.close();
      await ctx.close();
    }
  });
});

describe("resume links and transcripts", () => {
  it("an invalid resume link says so, leaves the address bar and goes on as a new visitor", async (t) => {
    if (needs(t, "resume")) return;
    const { ctx, page } = await openChat({}, "?resume=forged.token&lang=en");
    try {
      await page.getByTestId("resume-failed").filter({ hasText: "This link has expired or isn't valid" }).waitFor();
      assert.equal(new URL(page.url()).searchParams.has("resume"), false);
      assert.equal(new URL(page.url()).searchParams.get("lang"), "en");
      const { user } = await storedSession(page, "visitor");
      assert.equal(user.role, "customer");
    } finally {
      await ctx.close();
    }
  });

  it("an ended conversation's transcript goes to the customer's e-mail; its resume link restores the visitor elsewhere", async (t) => {
    if (needs(t, "transcriptEmail", "resume")) return;
    const agent = await agentOnline("rosa", "Rosa Lind");
    const session = await api("POST", "/api/visitors", undefined, { name: "Eve Park", email: "eve@example.com" });
    const ctx = await newContext(browser);
    await ctx.addInitScript((s) => window.localStorage.setItem("kefu.session.visitor", s), JSON.stringify(session));
    const page = await ctx.newPage();
    // Another device: a browser that has never seen Eve.
    const other = await newContext(browser);
    try {
      await page.goto(`${ui.url}/chat`);
      await send(page, "Thanks, that's all.");
      const row = agent.page.getByTestId("customer").filter({ hasText: "Thanks, that's all." });
      await row.click();
      await agent.page.getByTestId("resolve").click();
      await page.getByTestId("transcript-email").click();
      await page.getByTestId("transcript-status").filter({ hasText: "Sent to eve@example.com" }).waitFor();

      // The mail itself (kefu's outbox to the test's SMTP server): the transcript and a resume link.
      const mail = await mailbox.waitFor((m) => m.to.includes("eve@example.com") && m.text.includes("Thanks, that's all."));
      const link = /(https?:\/\/\S+\/chat\?resume=([^\s"<>]+))/.exec(mail.text);
      assert.ok(link, `a resume link in the transcript mail:\n${mail.text}`);
      const resumed = await other.newPage();
      await resumed.goto(`${ui.url}/chat?resume=${link[2]}`);
      await resumed.getByTestId("message").filter({ hasText: "Thanks, that's all." }).waitFor();
      assert.equal(new URL(resumed.url()).searchParams.has("resume"), false, "the token leaves the address bar");
      assert.equal(await resumed.getByTestId("resume-failed").count(), 0);
      const { user } = await storedSession(resumed, "visitor");
      assert.equal(user.id, session.user.id, "the link's session is Eve's");
    } finally {
      await other.close();
      await ctx.close();
      await agent.ctx.close();
    }
  });
});

describe("the admin's business hours", () => {
  it("edits, checks past-midnight and overlapping hours, saves and reads them back", async (t) => {
    if (needs(t, "hours")) return;
    const ctx = await newContext(browser);
    const page = await ctx.newPage();
    try {
      await signIn(page, ui.url, "/admin", "admin", kefu.adminPassword);
      const hours = page.getByTestId("hours");
      await hours.getByTestId("hours-save").waitFor();
      await hours.getByTestId("hours-enabled").check();
      await hours.getByTestId("hours-zone").selectOption("Europe/Berlin");
      const fri = hours.locator('[data-testid="hours-day"][data-day="fri"]');
      const sat = hours.locator('[data-testid="hours-day"][data-day="sat"]');
      await fri.getByTestId("hours-add").click();
      await fri.getByTestId("hours-open").fill("18:00");
      await fri.getByTestId("hours-close").fill("02:00");
      await fri.getByTestId("hours-past-midnight").filter({ hasText: "until 02:00 the next day" }).waitFor();
      await sat.getByTestId("hours-add").click();
      await sat.getByTestId("hours-open").fill("01:00");
      await sat.getByTestId("hours-close").fill("24:00");
      await hours.getByTestId("hours-save").click();
      await sat.getByTestId("hours-error").filter({ hasText: "Overlaps other hours (Friday 1)." }).waitFor();
      assert.equal(await sat.getByTestId("hours-open").getAttribute("aria-invalid"), "true");
      assert.equal(await focused(page), "hours-open", "focus on the first problem");
      await hours.getByTestId("hours-summary").filter({ hasText: "Correct 1 problem before saving." }).waitFor();
      await sat.getByTestId("hours-open").fill("10:00");
      await hours.getByTestId("hours-new-date").fill("2026-12-25");
      await hours.getByTestId("hours-add-date").click();
      await hours.getByTestId("hours-save").click();
      await hours.getByTestId("hours-saved").filter({ hasText: "Business hours saved." }).waitFor();
      await screenshot(page, "admin-hours-desktop", { fullPage: true });

      const saved = await api("GET", "/api/admin/hours", await adminToken(kefu));
      assert.equal(saved.enabled, true);
      assert.equal(saved.timeZone, "Europe/Berlin");
      assert.deepEqual(saved.weekly, [
        { day: "fri", open: "18:00", close: "02:00" },
        { day: "sat", open: "10:00", close: "24:00" },
      ]);
      assert.deepEqual(saved.closedDays, ["2026-12-25"]);

      await page.reload();
      await hours.locator('[data-testid="hours-day"][data-day="fri"]').getByTestId("hours-past-midnight").waitFor();
      // In Chinese.
      await page.evaluate(() => window.localStorage.setItem("kefu.locale", "zh-CN"));
      await page.reload();
      await page.getByRole("heading", { name: "营业时间" }).waitFor();
      await hours.getByTestId("hours-past-midnight").filter({ hasText: "至次日 02:00" }).waitFor();
    } finally {
      await setHours(ALWAYS_OPEN).catch(() => undefined);
      await ctx.close();
    }
  });
});
