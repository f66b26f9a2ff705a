// Browser tests of the admin page against the real server: creating agents, seeing them come online
// (list and node), disabling one (its console is signed out and cannot sign in) and enabling it again,
// and a token that is not an admin's. And signing out, which signs the account out everywhere.
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { io } from "socket.io-client";
import {
  adminToken,
  createAgent,
  launchBrowser,
  newContext,
  screenshot,
  signIn,
  startKefu,
  startUiProxy,
  storedSession,
  uiFor,
} from "./harness.mjs";

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

const row = (page, username) => page.locator(`[data-testid="agent-row"][data-username="${username}"]`);

/** Waits until the row of `username` shows `want` (online, disabled, connections, open). */
async function waitForRow(page, username, want, timeout = 15_000) {
  try {
    await page.waitForFunction(
      ([u, w]) => {
        const el = document.querySelector(`[data-testid="agent-row"][data-username="${u}"]`);
        if (!el) return false;
        const text = (id) => el.querySelector(`[data-testid="${id}"]`)?.textContent?.trim();
        return (
          (w.online === undefined || el.getAttribute("data-online") === String(w.online)) &&
          (w.disabled === undefined || el.getAttribute("data-disabled") === String(w.disabled)) &&
          (w.connections === undefined || text("agent-connections") === String(w.connections)) &&
          (w.open === undefined || text("agent-open") === String(w.open))
        );
      },
      [username, want],
      { timeout },
    );
  } catch (e) {
    const html = await row(page, username).innerText().catch(() => "(no row)");
    throw new Error(`row ${username} never showed ${JSON.stringify(want)}; it shows: ${html}`, { cause: e });
  }
}

/** Waits until the (only) node card shows these numbers. */
async function waitForNode(page, want, timeout = 15_000) {
  const ids = { connections: "node-connections", onlineUsers: "node-online-users", onlineAgents: "node-online-agents", open: "node-open" };
  await page.waitForFunction(
    ([w, ids]) => {
      const node = document.querySelector('[data-testid="node"]');
      if (!node) return false;
      return Object.entries(w).every(([k, v]) => node.querySelector(`[data-testid="${ids[k]}"]`)?.textContent?.trim() === String(v));
    },
    [want, ids],
    { timeout },
  );
}

async function setHidden(page, hidden) {
  await page.evaluate((h) => {
    Object.defineProperty(document, "visibilityState", { configurable: true, get: () => (h ? "hidden" : "visible") });
    document.dispatchEvent(new Event("visibilitychange"));
  }, hidden);
}

describe("admin page", () => {
  it("lists agents live, and disables and enables them", async () => {
    const adminCtx = await newContext(browser);
    const agentCtx = await newContext(browser);
    const admin = await adminCtx.newPage();
    const agent = await agentCtx.newPage();
    const listRequests = [];
    admin.on("request", (r) => {
      if (new URL(r.url()).pathname === "/api/agents" && r.method() === "GET") listRequests.push(Date.now());
    });
    const sockets = [];
    try {
      await signIn(admin, ui.url, "/admin", "admin", kefu.adminPassword);
      // A server without agents: the list has the admin alone, without a Disable button, and the
      // create form is open by itself.
      await row(admin, "admin").waitFor();
      assert.equal(await row(admin, "admin").getByTestId("agent-disable").count(), 0);
      await row(admin, "admin").getByText("You").waitFor();
      await waitForNode(admin, { connections: 0, onlineAgents: 0 });
      const uptime = await admin.getByTestId("node-uptime").textContent();
      assert.match(uptime, /^Up \d+(s|m \d\ds)$/);

      // Creating an agent: mistakes show at the field; the new agent is listed at once, offline.
      const form = admin.getByTestId("create-agent");
      await form.getByLabel("Username").fill("dana");
      await form.getByLabel(/Display name/).fill("Dana Park");
      await form.getByLabel("Password").fill("short");
      await form.getByLabel("Username").focus();
      await form.getByText("Use 8–128 characters.").waitFor();
      await form.getByLabel("Password").fill("dana-password-1");
      await form.getByRole("button", { name: "Create agent" }).click();
      await admin.getByTestId("create-success").waitFor();
      await waitForRow(admin, "dana", { online: false, disabled: false, connections: 0, open: 0 }, 2000);
      assert.equal(await row(admin, "dana").getByTestId("agent-name").textContent(), "Dana Park");
      await row(admin, "dana").getByText("Agent", { exact: true }).waitFor();

      // The same username again is a conflict, said plainly.
      await form.getByLabel("Username").fill("dana");
      await form.getByLabel("Password").fill("dana-password-1");
      await form.getByRole("button", { name: "Create agent" }).click();
      await admin.getByTestId("create-error").filter({ hasText: "already taken" }).waitFor();

      // The agent signs in elsewhere: the list (refreshing by itself) shows it online with one
      // connection, and the node counts it.
      await signIn(agent, ui.url, "/console", "dana", "dana-password-1");
      await agent.getByText("No conversations yet").waitFor();
      await waitForRow(admin, "dana", { online: true, connections: 1 });
      await waitForNode(admin, { connections: 1, onlineUsers: 1, onlineAgents: 1, open: 0 });
      await admin.getByTestId("stat-online").filter({ hasText: /^1$/ }).waitFor();

      // Hidden, the page stops asking; visible again, it asks at once.
      await setHidden(admin, true);
      await admin.waitForTimeout(300);
      const before = listRequests.length;
      await admin.waitForTimeout(5800);
      assert.equal(listRequests.length, before, "no refresh while the page is hidden");
      await setHidden(admin, false);
      const deadline = Date.now() + 2000;
      while (listRequests.length === before && Date.now() < deadline) await admin.waitForTimeout(100);
      assert.ok(listRequests.length > before, "a refresh as soon as the page is visible again");

      // Disabling asks first; cancelling changes nothing.
      await row(admin, "dana").getByTestId("agent-disable").click();
      const dialog = admin.getByTestId("confirm-dialog");
      await dialog.getByText("Disable Dana Park?").waitFor();
      await dialog.getByText("Dana Park (dana) is online now").waitFor();
      await screenshot(admin, "admin-confirm-disable");
      await dialog.getByRole("button", { name: "Cancel" }).click();
      await dialog.waitFor({ state: "hidden" });
      await waitForRow(admin, "dana", { disabled: false, online: true }, 1000);

      await row(admin, "dana").getByTestId("agent-disable").click();
      await dialog.getByTestId("confirm").click();
      await waitForRow(admin, "dana", { disabled: true, online: false, connections: 0 }, 5000);
      await row(admin, "dana").getByTestId("agent-disabled").waitFor();
      await admin.getByTestId("toggle-outcome").filter({ hasText: "Dana Park is disabled" }).waitFor();
      await waitForNode(admin, { connections: 0, onlineAgents: 0 });

      // The agent's console says why and shows the sign-in form, rather than reconnecting.
      await agent.getByTestId("login-notice").filter({ hasText: "an administrator has disabled it" }).waitFor({ timeout: 10_000 });
      assert.equal(await agent.getByTestId("connection-state").count(), 0);
      assert.equal(await agent.evaluate(() => window.localStorage.getItem("kefu.session.console")), null);
      await screenshot(agent, "console-account-disabled");
      await agent.getByLabel("Username").fill("dana");
      await agent.getByLabel("Password").fill("dana-password-1");
      await agent.getByRole("button", { name: "Sign in" }).click();
      await agent.getByTestId("login-error").filter({ hasText: "Wrong username or password, or the account is disabled." }).waitFor();

      // Enabled again, the agent can sign in.
      await row(admin, "dana").getByTestId("agent-enable").click();
      await waitForRow(admin, "dana", { disabled: false }, 5000);
      await admin.getByTestId("toggle-outcome").filter({ hasText: "Dana Park can sign in again." }).waitFor();
      await agent.getByRole("button", { name: "Sign in" }).click();
      await agent.getByText("No conversations yet").waitFor();
      await waitForRow(admin, "dana", { online: true, connections: 1 });

      // A busier server for the picture: more agents, one disabled, a customer talking to Dana.
      await createAgent(kefu, "mei", "Mei Lin");
      const omar = await createAgent(kefu, "omar", "Omar Haddad");
      await createAgent(kefu, "wei.li", "李伟");
      const token = await adminToken(kefu);
      const res = await fetch(`${kefu.url}/api/agents/${omar.id}`, {
        method: "PATCH",
        headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
        body: JSON.stringify({ disabled: true }),
      });
      assert.equal(res.status, 200);
      for (const name of ["Ann", "Ben"]) {
        const v = await (
          await fetch(`${kefu.url}/api/visitors`, {
            method: "POST",
            headers: { "content-type": "application/json" },
            body: JSON.stringify({ name }),
          })
        ).json();
        const s = io(kefu.url, { auth: { token: v.token }, transports: ["websocket"] });
        sockets.push(s);
        assert.equal((await s.timeout(10_000).emitWithAck("login", { userId: v.user.id })).ok, true);
        assert.equal((await s.timeout(10_000).emitWithAck("private_message", { content: `hello from ${name}` })).ok, true);
      }
      await admin.getByTestId("refresh").click();
      await waitForRow(admin, "dana", { online: true, connections: 1, open: 2 }, 5000);
      await waitForRow(admin, "omar", { disabled: true }, 5000);
      await waitForNode(admin, { connections: 3, onlineUsers: 3, onlineAgents: 1, open: 2 }, 5000);
      await agent.getByTestId("customer").nth(1).waitFor();

      // Search and sort.
      await admin.getByTestId("agent-search").fill("LIN");
      await admin.waitForFunction(() => document.querySelectorAll('[data-testid="agent-row"]').length === 1);
      await row(admin, "mei").waitFor();
      await admin.getByTestId("agent-search").fill("");
      await admin.getByTestId("agent-sort").selectOption("load");
      const order = await admin.$$eval('[data-testid="agent-row"]', (els) => els.map((e) => e.getAttribute("data-username")));
      assert.equal(order[0], "dana");
      await admin.getByTestId("agent-sort").selectOption("name");
      await admin.getByTestId("toggle-outcome").getByRole("button").click();
      await admin.getByRole("button", { name: "Close" }).click();
      await admin.getByTestId("create-agent").waitFor({ state: "detached" });
      await admin.mouse.move(0, 0);
      await screenshot(admin, "admin", { fullPage: true });
      await admin.setViewportSize({ width: 360, height: 740 });
      await screenshot(admin, "admin-mobile", { fullPage: true });
    } finally {
      sockets.forEach((s) => s.close());
      await agentCtx.close();
      await adminCtx.close();
    }
  });

  it("signs out a token that is not an admin's, and says so", async () => {
    const carol = await createAgent(kefu, "carol", "Carol Wang");
    const ctx = await newContext(browser);
    const page = await ctx.newPage();
    try {
      // At the sign-in form.
      await signIn(page, ui.url, "/admin", "carol", carol.password);
      await page.getByTestId("login-error").filter({ hasText: "not an administrator" }).waitFor();

      // With an agent's token stored as if it were an admin's: the server answers 403.
      const login = await (
        await fetch(`${kefu.url}/api/login`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ username: "carol", password: carol.password }),
        })
      ).json();
      await page.evaluate(
        (s) => window.localStorage.setItem("kefu.session.admin", JSON.stringify(s)),
        { token: login.token, user: { ...login.user, role: "admin" } },
      );
      await page.goto(`${ui.url}/admin`);
      await page.getByTestId("login-notice").filter({ hasText: "this account is not an administrator" }).waitFor();
      await page.getByLabel("Username").waitFor();
      assert.equal(await page.evaluate(() => window.localStorage.getItem("kefu.session.admin")), null);

      // A token the server no longer accepts: signed out, asked to sign in again.
      await page.evaluate(() =>
        window.localStorage.setItem(
          "kefu.session.admin",
          JSON.stringify({ token: "forged", user: { id: "1", role: "admin", username: "admin", displayName: "Administrator" } }),
        ),
      );
      await page.goto(`${ui.url}/admin`);
      await page.getByTestId("login-notice").filter({ hasText: "Your session has ended" }).waitFor();
    } finally {
      await ctx.close();
    }
  });
});

/** The status of `GET /api/me` with this token, straight at the server. */
async function meStatus(token) {
  const res = await fetch(`${kefu.url}/api/me`, { headers: { authorization: `Bearer ${token}` } });
  await res.body?.cancel();
  return res.status;
}

/** The sign-in form's button (the admin page's agent search matches the label "Username" too). */
const signInForm = (page) => page.getByRole("button", { name: "Sign in", exact: true });

describe("signing out", () => {
  it("signs the agent out in every tab and on every device, and the token stops working", async () => {
    const erin = await createAgent(kefu, "erin", "Erin Wu");
    // Two browsers with storage of their own: only the server can tell the second one.
    const here = await newContext(browser);
    const elsewhere = await newContext(browser);
    try {
      const tab = await here.newPage();
      const other = await elsewhere.newPage();
      for (const page of [tab, other]) {
        await signIn(page, ui.url, "/console", "erin", erin.password);
        await page.getByText("No conversations yet").waitFor();
      }
      const { token } = await storedSession(tab, "console");
      const { token: otherToken } = await storedSession(other, "console");
      assert.notEqual(token, otherToken);
      assert.equal(await meStatus(token), 200);
      assert.equal(await meStatus(otherToken), 200);

      const started = Date.now();
      const logout = tab.waitForRequest((r) => new URL(r.url()).pathname === "/api/logout" && r.method() === "POST");
      await tab.getByTestId("logout").click();
      assert.equal((await logout).headers().authorization, `Bearer ${token}`);
      // Here: the sign-in form, without a notice (the agent chose to), nothing stored.
      await signInForm(tab).waitFor();
      assert.equal(await tab.getByTestId("login-notice").count(), 0);
      assert.equal(await storedSession(tab, "console"), null);
      // Both tokens are refused from now on.
      assert.equal(await meStatus(token), 401);
      assert.equal(await meStatus(otherToken), 401);

      // Elsewhere: its connection was closed and the reconnect refused, so it signs out and says why,
      // within a few seconds of the click.
      await other.getByTestId("login-notice").filter({ hasText: "signed out on another tab or device" }).waitFor({ timeout: 5000 });
      await signInForm(other).waitFor();
      assert.ok(Date.now() - started < 5000, `signed out elsewhere after ${Date.now() - started} ms`);
      assert.equal(await storedSession(other, "console"), null);
      assert.equal(await other.getByTestId("connection-state").count(), 0);
      await screenshot(other, "console-signed-out-elsewhere");

      // Signing in again works, with a new token.
      await signIn(tab, ui.url, "/console", "erin", erin.password);
      await tab.getByText("No conversations yet").waitFor();
      assert.equal(await meStatus((await storedSession(tab, "console")).token), 200);
    } finally {
      await here.close();
      await elsewhere.close();
    }
  });

  it("signs the admin out, and the token stops working", async () => {
    const ctx = await newContext(browser);
    try {
      const page = await ctx.newPage();
      await signIn(page, ui.url, "/admin", "admin", kefu.adminPassword);
      await row(page, "admin").waitFor();
      const { token } = await storedSession(page, "admin");
      assert.equal(await meStatus(token), 200);
      await page.getByTestId("logout").click();
      await signInForm(page).waitFor();
      assert.equal(await page.getByTestId("login-notice").count(), 0);
      assert.equal(await storedSession(page, "admin"), null);
      assert.equal(await meStatus(token), 401);
    } finally {
      await ctx.close();
    }
  });

  it("signs out even when the server cannot be told", async () => {
    const fay = await createAgent(kefu, "fay", "Fay Chen");
    const proxy = await startUiProxy(kefu.url);
    const ctx = await newContext(browser);
    try {
      const page = await ctx.newPage();
      await signIn(page, proxy.url, "/console", "fay", fay.password);
      await page.getByText("No conversations yet").waitFor();
      const { token } = await storedSession(page, "console");
      proxy.setBlocked(true);
      await page.getByTestId("logout").click();
      await signInForm(page).waitFor({ timeout: 10_000 });
      assert.equal(await storedSession(page, "console"), null);
      // The server never heard of it.
      assert.equal(await meStatus(token), 200);
    } finally {
      await ctx.close();
      await proxy.close();
    }
  });
});
