// Hostile payloads are refused without harming the connection, other clients or the server.
import assert from "node:assert/strict";
import { createVisitor } from "../lib/api.mjs";
import { ack, ackWithin, assertAckError, assertOk, connect, rawEmitWithAck, sleep, waitFor, waitForDisconnect } from "../lib/client.mjs";
import { forEachTransport, onlineAgent, pair, send, test, useServer } from "../lib/harness.mjs";

forEachTransport("hostile payloads", (transport) => {
  const ctx = useServer({ env: { KEFU_MESSAGE_RATE_LIMIT: "0" } });

  /** A new customer of `agent` can still exchange a message with it. */
  async function stillChats(agent) {
    const visitor = await createVisitor(ctx.server);
    const socket = await connect(ctx.server, visitor.token, { transport });
    assertOk(await ack(socket, "login", { userId: visitor.user.id, csId: agent.user.id }));
    const sent = await send(socket, { content: "still there?" });
    assert.deepEqual(sent.started, { csId: agent.user.id, queued: false }, "the first message went to the agent asked for");
    assert.equal((await waitFor(agent.socket, "new_private_message", { where: (m) => m.id === sent.id })).content, "still there?");
    await send(agent.socket, { receiverId: visitor.user.id, content: "yes" });
    assert.equal((await waitFor(socket, "new_private_message")).content, "yes");
    socket.disconnect();
  }

  /** A new customer in a conversation with `agent` (its first message sent). */
  async function customerOf(agent) {
    return (await pair(ctx.server, transport, { agent })).customer;
  }

  test("content nested 10,000 levels deep is invalid_payload and the connection keeps working", async () => {
    const agent = await onlineAgent(ctx.server, transport);
    const customer = await customerOf(agent);
    const depth = 10_000;
    const nested = `${'{"a":'.repeat(depth)}1${"}".repeat(depth)}`;
    const reply = await rawEmitWithAck(customer.socket, `["private_message",{"content":${nested}}]`);
    assertAckError(reply, "invalid_payload", "deeply nested content");
    const arrays = `${"[".repeat(depth)}${"]".repeat(depth)}`;
    assertAckError(await rawEmitWithAck(customer.socket, `["private_message",${arrays}]`), "invalid_payload", "deeply nested payload");
    await send(customer.socket, { content: "the same connection still works" });
    await stillChats(agent);
  });

  test("a 1 MB content is too_large, or closes only that connection", async () => {
    const agent = await onlineAgent(ctx.server, transport);
    const customer = await customerOf(agent);
    const bystander = await customerOf(agent);
    const outcome = await Promise.race([
      ackWithin(15_000, customer.socket, "private_message", { content: "x".repeat(1 << 20) }).then((reply) => ({ reply })),
      waitForDisconnect(customer.socket, 15_000).then((reason) => ({ reason })),
    ]);
    if (outcome.reply) {
      assertAckError(outcome.reply, "too_large", "1 MB content");
      await send(customer.socket, { content: "small again" });
    } else {
      assert.ok(outcome.reason, "the connection was closed");
    }
    assert.equal(agent.socket.connected, true, "the agent's connection was closed too");
    assert.equal(bystander.socket.connected, true, "another customer's connection was closed too");
    await send(bystander.socket, { content: "unaffected" });
    await stillChats(agent);
    const history = assertOk(await ack(agent.socket, "history", { peerId: customer.user.id }));
    assert.ok(history.messages.every((m) => m.content.length < 1000), "the 1 MB message was stored");
  });

  test("binary where text is expected is invalid_payload", async () => {
    const agent = await onlineAgent(ctx.server, transport);
    const customer = await customerOf(agent);
    assertAckError(
      await ack(customer.socket, "private_message", { content: Buffer.from("hello") }),
      "invalid_payload",
      "binary content",
    );
    assertAckError(await ack(customer.socket, "private_message", Buffer.from([1, 2, 3])), "invalid_payload", "binary payload");
    assertAckError(
      await ack(customer.socket, "typing", { typing: Buffer.from([1]) }),
      "invalid_payload",
      "binary typing flag",
    );
    await send(customer.socket, { content: "text again" });
    await stillChats(agent);
  });

  test("wrongly shaped payloads on every event are invalid_payload and the connection keeps working", async () => {
    const agent = await onlineAgent(ctx.server, transport);
    const customer = await customerOf(agent);
    const cases = [
      ["login", [42]],
      ["login", [{ userId: ["1"] }]],
      ["read", ["everything"]],
      ["read", [{ peerId: agent.user.id, upToId: { $gt: 0 } }]],
      ["history", [{ limit: { $ne: null } }]],
      ["history", [[1, 2, 3]]],
      ["typing", [{ typing: 1 }]],
      ["private_message", [{ content: { toString: "x" } }]],
      ["private_message", [{ content: "hi", receiverId: { id: agent.user.id } }]],
    ];
    for (const [event, args] of cases) {
      assertAckError(await ack(customer.socket, event, ...args), "invalid_payload", `${event} ${JSON.stringify(args)}`);
    }
    await send(customer.socket, { content: "still fine" });
  });

  test("an unknown event and a malformed packet do not harm other clients", async () => {
    const agent = await onlineAgent(ctx.server, transport);
    const customer = await customerOf(agent);
    customer.socket.emit("drop_everything", { please: true });
    customer.socket.io.engine.write('2["private_message",{"content":');
    customer.socket.io.engine.write("2garbage");
    await sleep(300);
    // The offending connection may be closed; everyone else carries on.
    assert.equal(agent.socket.connected, true, "the agent's connection was closed");
    await stillChats(agent);
  });
});
