// history: latest page, paging up with beforeId, resync with afterSeq, the limit cap.
import assert from "node:assert/strict";
import { before } from "node:test";
import { createVisitor } from "../lib/api.mjs";
import { ack, assertAckError, assertOk, connect } from "../lib/client.mjs";
import { forEachTransport, pair, send, test, useServer } from "../lib/harness.mjs";

const TOTAL = 120;

forEachTransport("history", (transport) => {
  const ctx = useServer({ env: { KEFU_MESSAGE_RATE_LIMIT: "0" }, keepSockets: true });
  let chat; // { agent, customer, conversationId, acks (by seq), agentMessageId }

  before(async () => {
    // m0 is the first message, which starts the conversation; m1 … m119 follow in batches.
    const { agent, customer, conversationId, first } = await pair(ctx.server, transport, { message: { content: "m0" } });
    const replies = [first];
    for (let i = 1; i < TOTAL; i += 20) {
      const batch = Array.from({ length: Math.min(20, TOTAL - i) }, (_, j) =>
        i + j === 7
          ? send(agent.socket, { receiverId: customer.user.id, content: `m${i + j}` })
          : send(customer.socket, { content: `m${i + j}` }),
      );
      replies.push(...(await Promise.all(batch)));
    }
    const agentMessageId = replies[7].id;
    replies.sort((a, b) => a.seq - b.seq);
    chat = { agent, customer, conversationId, acks: replies, agentMessageId };
  });

  const seqs = (messages) => messages.map((m) => m.seq);
  const range = (from, count) => Array.from({ length: count }, (_, i) => from + i);
  const firstSeq = () => chat.acks[0].seq;

  async function history(payload, socket = chat.agent.socket) {
    const reply = assertOk(await ack(socket, "history", payload), `history ${JSON.stringify(payload)}`);
    assert.equal(reply.conversationId, chat.conversationId);
    assert.ok(Array.isArray(reply.messages));
    assert.equal(typeof reply.hasMore, "boolean");
    assert.equal(reply.peerReadSeq, 0, "nobody has read anything in this conversation");
    return reply;
  }

  test("the stored messages are contiguous in seq, from 1", () => {
    assert.equal(firstSeq(), 1);
    assert.deepEqual(seqs(chat.acks), range(firstSeq(), TOTAL));
  });

  test("without beforeId or afterSeq: the latest 50, ascending by seq", async () => {
    const page = await history({ peerId: chat.customer.user.id });
    assert.deepEqual(seqs(page.messages), range(firstSeq() + TOTAL - 50, 50));
    assert.equal(page.hasMore, true, "older messages exist");
    const last = page.messages.at(-1);
    const lastAck = chat.acks.at(-1);
    assert.equal(last.id, lastAck.id);
    assert.equal(last.timestamp, lastAck.createdAt);
    assert.equal(last.conversationId, chat.conversationId);
    assert.equal(last.kind, "text");
  });

  test("history messages are the message objects, with sender and receiver", async () => {
    const page = await history({ peerId: chat.customer.user.id, afterSeq: firstSeq() - 1, limit: 20 });
    const fromAgent = page.messages.find((m) => m.id === chat.agentMessageId);
    assert.ok(fromAgent, "the agent's message is among the first 20");
    assert.equal(fromAgent.senderId, chat.agent.user.id);
    assert.equal(fromAgent.receiverId, chat.customer.user.id);
    assert.equal(fromAgent.content, "m7");
    const fromCustomer = page.messages.find((m) => m.id !== chat.agentMessageId);
    assert.equal(fromCustomer.senderId, chat.customer.user.id);
    assert.equal(fromCustomer.receiverId, chat.agent.user.id);
    assert.deepEqual(Object.keys(fromCustomer).sort(), ["clientMsgId", "content", "conversationId", "id", "kind", "receiverId", "senderId", "seq", "timestamp"]);
  });

  test("a customer may omit peerId, and conversationId picks the conversation", async () => {
    const mine = await history({}, chat.customer.socket);
    const byConversation = await history({ conversationId: chat.conversationId });
    const byPeer = await history({ peerId: chat.customer.user.id });
    assert.deepEqual(mine.messages, byPeer.messages);
    assert.deepEqual(byConversation.messages, byPeer.messages);
  });

  test("beforeId with a limit gives the page just before that message; paging up reaches the first", async () => {
    const latest = await history({ peerId: chat.customer.user.id, limit: 30 });
    assert.deepEqual(seqs(latest.messages), range(firstSeq() + TOTAL - 30, 30));
    const seen = [...latest.messages];
    let oldest = latest.messages[0];
    for (let pages = 0; pages < 10 && oldest.seq > firstSeq(); pages++) {
      const page = await history({ peerId: chat.customer.user.id, beforeId: oldest.id, limit: 30 });
      assert.ok(page.messages.length > 0, "an empty page before the first message");
      assert.deepEqual(seqs(page.messages), range(oldest.seq - page.messages.length, page.messages.length));
      assert.equal(page.messages.length, Math.min(30, oldest.seq - firstSeq()));
      assert.equal(page.hasMore, page.messages[0].seq > firstSeq(), `hasMore of the page from seq ${page.messages[0].seq}`);
      seen.unshift(...page.messages);
      oldest = page.messages[0];
    }
    assert.deepEqual(seen.map((m) => m.id), chat.acks.map((a) => a.id));
    const beforeFirst = await history({ peerId: chat.customer.user.id, beforeId: chat.acks[0].id });
    assert.deepEqual(beforeFirst.messages, []);
    assert.equal(beforeFirst.hasMore, false);
  });

  test("afterSeq returns the messages after it, with hasMore while more remain", async () => {
    const first = await history({ peerId: chat.customer.user.id, afterSeq: firstSeq() - 1, limit: 100 });
    assert.deepEqual(seqs(first.messages), range(firstSeq(), 100));
    assert.equal(first.hasMore, true);
    const rest = await history({ peerId: chat.customer.user.id, afterSeq: first.messages.at(-1).seq, limit: 100 });
    assert.deepEqual(seqs(rest.messages), range(firstSeq() + 100, TOTAL - 100));
    assert.equal(rest.hasMore, false);
    const none = await history({ peerId: chat.customer.user.id, afterSeq: chat.acks.at(-1).seq });
    assert.deepEqual(none.messages, []);
    assert.equal(none.hasMore, false);
  });

  test("afterSeq pages of the default size", async () => {
    const page = await history({ peerId: chat.customer.user.id, afterSeq: firstSeq() + 9 });
    assert.deepEqual(seqs(page.messages), range(firstSeq() + 10, 50));
    assert.equal(page.hasMore, true);
  });

  test("limit is capped at 100", async () => {
    const latest = await history({ peerId: chat.customer.user.id, limit: 1000 });
    assert.deepEqual(seqs(latest.messages), range(firstSeq() + TOTAL - 100, 100));
    assert.equal(latest.hasMore, true);
    const after = await history({ peerId: chat.customer.user.id, afterSeq: firstSeq() - 1, limit: 101 });
    assert.equal(after.messages.length, 100);
    assert.equal(after.hasMore, true);
  });

  test("a customer with no conversation yet gets conversationId null and no messages", async () => {
    const visitor = await createVisitor(ctx.server);
    const socket = await connect(ctx.server, visitor.token, { transport });
    const empty = { ok: true, conversationId: null, messages: [], hasMore: false, peerReadSeq: 0 };
    assert.deepEqual(assertOk(await ack(socket, "history", {})), empty, "before its login");
    // Its login, even naming an agent, starts nothing.
    assertOk(await ack(socket, "login", { userId: visitor.user.id, csId: chat.agent.user.id }));
    assert.deepEqual(assertOk(await ack(socket, "history", {})), empty, "after its login");
    assert.deepEqual(assertOk(await ack(socket, "history", { peerId: chat.agent.user.id, afterSeq: 0 })), empty, "with the agent it asked for");
  });

  test("an unknown conversationId or beforeId is not_found; a wrongly typed field is invalid_payload", async () => {
    const socket = chat.agent.socket;
    assertAckError(await ack(socket, "history", { conversationId: "987654321" }), "not_found", "unknown conversationId");
    assertAckError(await ack(socket, "history", { peerId: chat.customer.user.id, beforeId: "987654321" }), "not_found", "unknown beforeId");
    assertAckError(await ack(socket, "history", { peerId: chat.customer.user.id, limit: "ten" }), "invalid_payload", "limit: 'ten'");
    assertAckError(await ack(socket, "history", { peerId: chat.customer.user.id, afterSeq: "x" }), "invalid_payload", "afterSeq: 'x'");
    assertAckError(await ack(socket, "history", { peerId: "not-an-id" }), "invalid_payload", "peerId: 'not-an-id'");
  });
});
