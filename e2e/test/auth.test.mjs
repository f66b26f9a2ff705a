// The Socket.IO handshake: only a valid token opens a socket.
import assert from "node:assert/strict";
import { createAgent, createVisitor } from "../lib/api.mjs";
import { connect, connectError } from "../lib/client.mjs";
import { forEachTransport, test, useServer } from "../lib/harness.mjs";
import { decode, findSigningKey, forge, sign, tamper, unsigned } from "../lib/jwt.mjs";

forEachTransport("connect authentication", (transport) => {
  const ctx = useServer();

  async function assertRefused(token, options = {}) {
    const err = await connectError(ctx.server, token, { transport, ...options });
    assert.equal(err.message, "unauthorized", `connect_error message: ${err.message}`);
  }

  test("a visitor token and an agent token both connect", async () => {
    const visitor = await createVisitor(ctx.server);
    const socket = await connect(ctx.server, visitor.token, { transport });
    assert.equal(socket.connected, true);
    const agent = await createAgent(ctx.server);
    const agentSocket = await connect(ctx.server, agent.token, { transport });
    assert.equal(agentSocket.connected, true);
  });

  test("no auth at all is refused with 'unauthorized'", async () => {
    await assertRefused(undefined);
  });

  test("an empty auth object and an empty token are refused", async () => {
    await assertRefused(undefined, { auth: {} });
    await assertRefused("");
  });

  test("a token that is not a string is refused", async () => {
    await assertRefused(undefined, { auth: { token: 12345 } });
  });

  test("a garbage token is refused", async () => {
    await assertRefused("garbage");
    await assertRefused("a.b.c");
  });

  test("a token signed with another secret is refused", async () => {
    const visitor = await createVisitor(ctx.server);
    await assertRefused(forge(visitor.token));
    // Not even for the admin's identity.
    await assertRefused(forge(visitor.token, { role: "admin" }));
  });

  test("a token whose claims were changed after signing is refused", async () => {
    const visitor = await createVisitor(ctx.server);
    const other = await createVisitor(ctx.server);
    const { payload } = decode(visitor.token);
    const claim = Object.keys(payload).find((k) => String(payload[k]) === visitor.user.id) ?? "sub";
    await assertRefused(tamper(visitor.token, { [claim]: typeof payload[claim] === "number" ? Number(other.user.id) : other.user.id }));
  });

  test("an unsigned token (alg none) is refused", async () => {
    const visitor = await createVisitor(ctx.server);
    await assertRefused(unsigned(visitor.token));
  });

  test("an expired token is refused", async (t) => {
    const visitor = await createVisitor(ctx.server);
    const key = await findSigningKey(ctx.server.dataDir, visitor.token);
    if (!key) {
      t.skip("the signing key is not in a readable form in the data dir, so no expired token can be made");
      return;
    }
    const { header, payload } = decode(visitor.token);
    const now = Math.floor(Date.now() / 1000);
    // Control: the same key with a future expiry is accepted, so only the expiry differs.
    const fresh = sign(header, { ...payload, iat: now, exp: now + 3600 }, key);
    const socket = await connect(ctx.server, fresh, { transport });
    socket.disconnect();
    await assertRefused(sign(header, { ...payload, iat: now - 7200, exp: now - 3600 }, key));
  });
});
