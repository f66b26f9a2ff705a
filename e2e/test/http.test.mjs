// HTTP API: visitors, staff login, agent creation, /api/me, health checks.
import assert from "node:assert/strict";
import { describe } from "node:test";
import { adminToken, assertHttpError, createAgent, createVisitor, login, request, uniqueName } from "../lib/api.mjs";
import { assertId, test, useServer } from "../lib/harness.mjs";

describe("HTTP API", () => {
  const ctx = useServer();

  describe("POST /api/visitors", () => {
    test("returns 201 with a token and a customer user whose id is a string", async () => {
      const res = await request(ctx.server, "POST", "/api/visitors", { body: { name: "Ann", email: "ann@example.com" } });
      assert.equal(res.status, 201, res.text);
      assert.equal(typeof res.body.token, "string");
      assert.ok(res.body.token.length > 20);
      assertId(res.body.user.id, "user.id");
      assert.equal(res.body.user.role, "customer");
      assert.equal(res.body.user.displayName, "Ann");
      assert.equal(typeof res.body.user.username, "string");
    });

    test("accepts an empty body and names the visitor 'Visitor xxxx'", async () => {
      const res = await request(ctx.server, "POST", "/api/visitors");
      assert.equal(res.status, 201, res.text);
      assert.equal(res.body.user.role, "customer");
      assertId(res.body.user.id, "user.id");
      assert.match(res.body.user.displayName, /^Visitor \S+$/);
      assert.match(res.body.user.username, /^visitor-/);
    });

    test("gives every visitor its own user and token", async () => {
      const a = await createVisitor(ctx.server);
      const b = await createVisitor(ctx.server);
      assert.notEqual(a.user.id, b.user.id);
      assert.notEqual(a.user.username, b.user.username);
      assert.notEqual(a.token, b.token);
    });

    test("GET /api/me with a visitor token returns that visitor", async () => {
      const visitor = await createVisitor(ctx.server, { name: "Bob" });
      const res = await request(ctx.server, "GET", "/api/me", { token: visitor.token });
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.body.user, visitor.user);
    });

    test("rejects a name over 64 characters with 400 invalid_payload", async () => {
      const res = await request(ctx.server, "POST", "/api/visitors", { body: { name: "x".repeat(65) } });
      assertHttpError(res, 400, "invalid_payload");
      const ok = await request(ctx.server, "POST", "/api/visitors", { body: { name: "x".repeat(64) } });
      assert.equal(ok.status, 201, ok.text);
    });

    test("rejects malformed JSON with 400 invalid_payload", async () => {
      const res = await request(ctx.server, "POST", "/api/visitors", { rawBody: "{\"name\": " });
      assertHttpError(res, 400, "invalid_payload");
    });

    test("rejects a name that is not a string with 400 invalid_payload", async () => {
      const res = await request(ctx.server, "POST", "/api/visitors", { body: { name: 42 } });
      assertHttpError(res, 400, "invalid_payload");
    });
  });

  describe("GET /api/me", () => {
    test("answers 401 unauthorized without a token", async () => {
      assertHttpError(await request(ctx.server, "GET", "/api/me"), 401, "unauthorized");
    });

    test("answers 401 unauthorized for a garbage token", async () => {
      assertHttpError(await request(ctx.server, "GET", "/api/me", { token: "not-a-token" }), 401, "unauthorized");
    });
  });

  describe("POST /api/login", () => {
    test("logs the admin in with 200, a token and the admin user", async () => {
      const res = await request(ctx.server, "POST", "/api/login", { body: { username: "admin", password: ctx.server.adminPassword } });
      assert.equal(res.status, 200, res.text);
      assert.equal(typeof res.body.token, "string");
      assertId(res.body.user.id, "user.id");
      assert.equal(res.body.user.role, "admin");
      assert.equal(res.body.user.username, "admin");
      const me = await request(ctx.server, "GET", "/api/me", { token: res.body.token });
      assert.equal(me.status, 200, me.text);
      assert.equal(me.body.user.id, res.body.user.id);
    });

    test("answers 401 unauthorized for a wrong password", async () => {
      const res = await request(ctx.server, "POST", "/api/login", { body: { username: "admin", password: "wrong-password" } });
      assertHttpError(res, 401, "unauthorized");
    });

    test("answers the same 401 for an unknown user and for a customer account", async () => {
      assertHttpError(
        await request(ctx.server, "POST", "/api/login", { body: { username: "nobody-here", password: "whatever-123" } }),
        401,
        "unauthorized",
      );
      const visitor = await createVisitor(ctx.server);
      assertHttpError(
        await request(ctx.server, "POST", "/api/login", { body: { username: visitor.user.username, password: "whatever-123" } }),
        401,
        "unauthorized",
      );
    });

    test("rejects a body without a password with 400 invalid_payload", async () => {
      assertHttpError(await request(ctx.server, "POST", "/api/login", { body: { username: "admin" } }), 400, "invalid_payload");
    });
  });

  describe("POST /api/agents", () => {
    test("creates an agent (201) that can log in", async () => {
      const username = uniqueName();
      const res = await request(ctx.server, "POST", "/api/agents", {
        token: await adminToken(ctx.server),
        body: { username, password: "correct-horse", displayName: "Carol" },
      });
      assert.equal(res.status, 201, res.text);
      assertId(res.body.user.id, "user.id");
      assert.deepEqual(res.body.user, { id: res.body.user.id, role: "agent", username, displayName: "Carol" });
      const session = await login(ctx.server, username, "correct-horse");
      assert.equal(session.user.id, res.body.user.id);
      assert.equal(session.user.role, "agent");
    });

    test("answers 401 without a token", async () => {
      const res = await request(ctx.server, "POST", "/api/agents", { body: { username: uniqueName(), password: "correct-horse" } });
      assertHttpError(res, 401, "unauthorized");
    });

    test("answers 403 forbidden for an agent's token and for a visitor's token", async () => {
      const agent = await createAgent(ctx.server);
      const username = uniqueName();
      assertHttpError(
        await request(ctx.server, "POST", "/api/agents", { token: agent.token, body: { username, password: "correct-horse" } }),
        403,
        "forbidden",
      );
      const visitor = await createVisitor(ctx.server);
      assertHttpError(
        await request(ctx.server, "POST", "/api/agents", { token: visitor.token, body: { username, password: "correct-horse" } }),
        403,
        "forbidden",
      );
      // Neither attempt created the user.
      assertHttpError(
        await request(ctx.server, "POST", "/api/login", { body: { username, password: "correct-horse" } }),
        401,
        "unauthorized",
      );
    });

    test("answers 409 conflict for a username that is taken, whatever its case", async () => {
      const token = await adminToken(ctx.server);
      const username = uniqueName();
      const first = await request(ctx.server, "POST", "/api/agents", { token, body: { username, password: "correct-horse" } });
      assert.equal(first.status, 201, first.text);
      assertHttpError(
        await request(ctx.server, "POST", "/api/agents", { token, body: { username, password: "another-pass" } }),
        409,
        "conflict",
      );
      assertHttpError(
        await request(ctx.server, "POST", "/api/agents", { token, body: { username: username.toUpperCase(), password: "another-pass" } }),
        409,
        "conflict",
      );
      // The first agent's password is unchanged.
      await login(ctx.server, username, "correct-horse");
    });

    test("lower-cases usernames", async () => {
      const username = uniqueName("MixedCase");
      const res = await request(ctx.server, "POST", "/api/agents", {
        token: await adminToken(ctx.server),
        body: { username, password: "correct-horse" },
      });
      assert.equal(res.status, 201, res.text);
      assert.equal(res.body.user.username, username.toLowerCase());
    });

    const invalid = [
      ["a username of 2 characters", { username: "ab", password: "correct-horse" }],
      ["a username of 33 characters", { username: "a".repeat(33), password: "correct-horse" }],
      ["a username with a space", { username: "bad name", password: "correct-horse" }],
      ["a username with a slash", { username: "bad/name", password: "correct-horse" }],
      ["a username that is not a string", { username: 12345, password: "correct-horse" }],
      ["a missing username", { password: "correct-horse" }],
      ["a password of 7 characters", { username: "valid-name", password: "1234567" }],
      ["a password of 129 characters", { username: "valid-name", password: "p".repeat(129) }],
      ["a display name of 65 characters", { username: "valid-name", password: "correct-horse", displayName: "d".repeat(65) }],
    ];
    for (const [what, body] of invalid) {
      test(`answers 400 invalid_payload for ${what}`, async () => {
        const res = await request(ctx.server, "POST", "/api/agents", { token: await adminToken(ctx.server), body });
        assertHttpError(res, 400, "invalid_payload");
      });
    }

    test("accepts the boundaries: 3 and 32 character usernames, 8 and 128 character passwords", async () => {
      const token = await adminToken(ctx.server);
      for (const body of [
        { username: "a.b", password: "12345678" },
        { username: uniqueName("max").padEnd(32, "_"), password: "p".repeat(128) },
      ]) {
        const res = await request(ctx.server, "POST", "/api/agents", { token, body });
        assert.equal(res.status, 201, `${JSON.stringify(body)}: ${res.text}`);
        await login(ctx.server, body.username, body.password);
      }
    });
  });

  describe("health checks", () => {
    test("GET /healthz answers 200 ok", async () => {
      const res = await request(ctx.server, "GET", "/healthz");
      assert.equal(res.status, 200);
      assert.equal(res.text.trim(), "ok");
    });

    test("GET /readyz answers 200 {status: ready} while the database answers", async () => {
      const res = await request(ctx.server, "GET", "/readyz");
      assert.equal(res.status, 200, res.text);
      assert.deepEqual(res.body, { status: "ready" });
    });
  });
});
