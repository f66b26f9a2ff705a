// Nobody speaks for someone else or reaches into another conversation.
import assert from "node:assert/strict";
import { describe } from "node:test";
import { adminToken, createAgent, request } from "../lib/api.mjs";
import { ack, assertAckError, assertOk, expectNo } from "../lib/client.mjs";
import { forEachTransport, onlineAgent, onlineCustomer, pair, send, test, useServer } from "../lib/harness.mjs";

/** Asserts a refusal that protocol.md allows to be either forbidden or not_found (a conversation id that is not mine). */
function assertRefused(reply, what) {
  assert.equal(reply?.ok, false, `${what}: expected a refusal, got ${JSON.stringify(reply).slice(0, 300)}`);
  assert.ok(["forbidden", "not_found"].includes(reply.error?.code), `${what}: expected forbidden or not_found, got ${JSON.stringify(reply.error)}`);
}

forEachTransport("authorization", (transport) => {
  const ctx = useServer();

  /** Two agents, each with one customer and one message from it (the one that started the conversation). */
  async function twoConversations() {
    const one = await pair(ctx.server, transport, { message: { content: "one" } });
    const two = await pair(ctx.server, transport, { message: { content: "two" } });
    one.message = one.first;
    two.message = two.first;
    return { one, two };
  }

  async function historyIds(socket, peerId) {
    return assertOk(await ack(socket, "history", { peerId })).messages.map((m) => m.id);
  }

  describe("impersonation", () => {
    test("private_message with another user's senderId is forbidden and stores nothing", async () => {
      const { one, two } = await twoConversations();
      const before = await historyIds(one.agent.socket, one.customer.user.id);
      for (const senderId of [two.customer.user.id, one.agent.user.id]) {
        assertAckError(
          await ack(one.customer.socket, "private_message", { senderId, content: "spoofed" }),
          "forbidden",
          `customer with senderId ${senderId}`,
        );
      }
      assertAckError(
        await ack(one.agent.socket, "private_message", { senderId: one.customer.user.id, receiverId: one.customer.user.id, content: "spoofed" }),
        "forbidden",
        "agent posing as its customer",
      );
      assert.deepEqual(await historyIds(one.agent.socket, one.customer.user.id), before, "a spoofed message was stored");
      await expectNo(one.agent.socket, "new_private_message", { where: (m) => m.content === "spoofed" });
      await expectNo(one.customer.socket, "new_private_message", { ms: 0, where: (m) => m.content === "spoofed" });
      await expectNo(two.agent.socket, "new_private_message", { ms: 0, where: (m) => m.content === "spoofed" });

      // The caller's own id is accepted.
      const own = await send(one.customer.socket, { senderId: one.customer.user.id, content: "really me" });
      assert.equal((await one.agent.socket.inbox.next("new_private_message")).id, own.id);
    });

    test("login with another user's userId is forbidden", async () => {
      const { one, two } = await twoConversations();
      assertAckError(await ack(one.customer.socket, "login", { userId: two.customer.user.id }), "forbidden", "customer as another customer");
      assertAckError(await ack(one.agent.socket, "login", { userId: two.agent.user.id }), "forbidden", "agent as another agent");
    });
  });

  describe("other conversations", () => {
    test("a customer cannot write to an agent that is not its own, nor to another customer", async () => {
      const { one, two } = await twoConversations();
      assertAckError(
        await ack(one.customer.socket, "private_message", { receiverId: two.agent.user.id, content: "hijack" }),
        "forbidden",
        "customer to another agent",
      );
      assertAckError(
        await ack(one.customer.socket, "private_message", { receiverId: two.customer.user.id, content: "hijack" }),
        "forbidden",
        "customer to another customer",
      );
      await expectNo(two.agent.socket, "new_private_message", { where: (m) => m.content === "hijack" });
      await expectNo(two.customer.socket, "new_private_message", { ms: 0 });
      assert.deepEqual(await historyIds(two.agent.socket, two.customer.user.id), [two.message.id]);
    });

    test("an agent cannot write to a customer assigned to another agent", async () => {
      const { one, two } = await twoConversations();
      assertAckError(
        await ack(one.agent.socket, "private_message", { receiverId: two.customer.user.id, content: "poach" }),
        "forbidden",
        "agent to another agent's customer",
      );
      await expectNo(two.customer.socket, "new_private_message");
      assert.deepEqual(await historyIds(two.agent.socket, two.customer.user.id), [two.message.id]);
    });

    test("an agent must name a receiver; an unknown receiver is not_found", async () => {
      const { one } = await twoConversations();
      assertAckError(await ack(one.agent.socket, "private_message", { content: "to whom?" }), "invalid_payload", "agent without receiverId");
      assertAckError(
        await ack(one.agent.socket, "private_message", { receiverId: "987654321", content: "nobody" }),
        "not_found",
        "unknown receiver",
      );
    });

    test("read on someone else's conversation is refused and marks nothing", async () => {
      const { one, two } = await twoConversations();
      assertAckError(
        await ack(one.agent.socket, "read", { peerId: two.customer.user.id, upToId: two.message.id }),
        "forbidden",
        "agent reads another agent's customer",
      );
      assertAckError(
        await ack(one.customer.socket, "read", { peerId: two.agent.user.id, upToId: two.message.id }),
        "forbidden",
        "customer reads another conversation",
      );
      await expectNo(two.customer.socket, "messages_read");
      await expectNo(two.agent.socket, "messages_read", { ms: 0 });
      const members = assertOk(await ack(two.agent.socket, "all_member")).users;
      assert.equal(members.find((m) => m.id === two.customer.user.id).message_count, 1, "the other agent's unread count changed");
    });

    test("history of someone else's conversation is refused", async () => {
      const { one, two } = await twoConversations();
      const attempts = [
        ["agent, peerId of another agent's customer", one.agent.socket, { peerId: two.customer.user.id }, "forbidden"],
        ["customer, peerId of another agent", one.customer.socket, { peerId: two.agent.user.id }, "forbidden"],
        ["agent, conversationId of another agent", one.agent.socket, { conversationId: two.conversationId }],
        ["customer, conversationId of another customer", one.customer.socket, { conversationId: two.conversationId }],
      ];
      for (const [what, socket, payload, code] of attempts) {
        const reply = await ack(socket, "history", payload);
        if (code) assertAckError(reply, code, what);
        else assertRefused(reply, what);
        assert.equal(reply.messages, undefined, `${what}: messages leaked`);
      }
    });

    test("typing to someone else's conversation is refused and not delivered", async () => {
      const { one, two } = await twoConversations();
      assertAckError(
        await ack(one.agent.socket, "typing", { receiverId: two.customer.user.id, typing: true }),
        "forbidden",
        "agent to another agent's customer",
      );
      assertAckError(
        await ack(one.customer.socket, "typing", { receiverId: two.agent.user.id, typing: true }),
        "forbidden",
        "customer to another agent",
      );
      await expectNo(two.customer.socket, "typing");
      await expectNo(two.agent.socket, "typing", { ms: 0 });
    });

    test("a peer or receiver that is no user at all is not_found in typing, read and history", async () => {
      const { one } = await twoConversations();
      const nobody = "987654321";
      assertAckError(await ack(one.agent.socket, "typing", { receiverId: nobody, typing: true }), "not_found", "typing");
      assertAckError(await ack(one.agent.socket, "read", { peerId: nobody, upToId: one.message.id }), "not_found", "read");
      assertAckError(await ack(one.agent.socket, "history", { peerId: nobody }), "not_found", "history");
      assertAckError(await ack(one.customer.socket, "typing", { receiverId: nobody, typing: true }), "not_found", "customer typing");
    });
  });

  describe("before the first message", () => {
    /** The visitor's conversations, as GET /api/conversations lists them. */
    async function conversationsOf(customer) {
      const res = await request(ctx.server, "GET", "/api/conversations", { token: customer.token });
      assert.equal(res.status, 200, res.text);
      return res.body.conversations;
    }

    test("a customer who asked for an agent but has not written is not that agent's customer", async () => {
      const agent = await onlineAgent(ctx.server, transport);
      const customer = await onlineCustomer(ctx.server, transport, { csId: agent.user.id });
      const peer = customer.user.id;
      assertAckError(await ack(agent.socket, "private_message", { receiverId: peer, content: "first!" }), "forbidden", "agent writes first");
      assertAckError(await ack(agent.socket, "typing", { receiverId: peer, typing: true }), "forbidden", "agent typing");
      assertAckError(await ack(agent.socket, "history", { peerId: peer }), "forbidden", "agent history");
      assertAckError(await ack(agent.socket, "resolve", { peerId: peer }), "forbidden", "agent resolve");
      await expectNo(customer.socket, "new_private_message");
      await expectNo(customer.socket, "typing", { ms: 0 });
      assert.deepEqual(assertOk(await ack(agent.socket, "all_member")).users, []);
      assert.deepEqual(await conversationsOf(customer), [], "a refused event started a conversation");
    });

    test("a first message naming no agent, or speaking for someone else, is refused and starts nothing", async () => {
      const agent = await onlineAgent(ctx.server, transport);
      const other = await pair(ctx.server, transport);
      const customer = await onlineCustomer(ctx.server, transport);
      assertAckError(
        await ack(customer.socket, "private_message", { receiverId: other.customer.user.id, content: "hijack" }),
        "not_found",
        "first message to another customer",
      );
      assertAckError(await ack(customer.socket, "private_message", { receiverId: "987654321", content: "nobody" }), "not_found", "first message to nobody");
      assertAckError(
        await ack(customer.socket, "private_message", { senderId: other.customer.user.id, content: "spoofed" }),
        "forbidden",
        "first message as another customer",
      );
      await expectNo(other.customer.socket, "new_private_message");
      for (const socket of [agent.socket, other.agent.socket]) {
        await expectNo(socket, "new_private_message", { ms: 0 });
        await expectNo(socket, "conversation_assigned", { ms: 0 });
      }
      assert.deepEqual(await conversationsOf(customer), [], "a refused first message started a conversation");
      assert.equal(assertOk(await ack(customer.socket, "history", {})).conversationId, null);

      // A disabled agent, or the customer itself, is no agent to ask for either.
      const disabled = await createAgent(ctx.server);
      const off = await request(ctx.server, "PATCH", `/api/agents/${disabled.user.id}`, { token: await adminToken(ctx.server), body: { disabled: true } });
      assert.equal(off.status, 200, off.text);
      assertAckError(await ack(customer.socket, "private_message", { receiverId: disabled.user.id, content: "hi" }), "not_found", "first message to a disabled agent");
      assertAckError(await ack(customer.socket, "private_message", { receiverId: customer.user.id, content: "hi" }), "not_found", "first message to itself");
      assert.deepEqual(await conversationsOf(customer), []);
    });
  });
});
