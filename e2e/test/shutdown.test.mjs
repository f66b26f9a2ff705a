// SIGTERM: the server closes its connections and exits 0 promptly, so a deploy can restart it.
import assert from "node:assert/strict";
import { describe } from "node:test";
import { sleep, waitForDisconnect } from "../lib/client.mjs";
import { pair, serverForTest, test, TRANSPORTS } from "../lib/harness.mjs";

const PROMPT_MS = 5_000;

/** Sends SIGTERM and resolves with { code, ms }, or rejects if the process outlives `PROMPT_MS`. */
async function terminate(server) {
  const started = Date.now();
  server.child.kill("SIGTERM");
  const result = await Promise.race([server.exit, sleep(PROMPT_MS).then(() => "timeout")]);
  if (result === "timeout") {
    server.child.kill("SIGKILL");
    await server.exit;
    assert.fail(`kefu still running ${PROMPT_MS} ms after SIGTERM`);
  }
  return { code: result.code, ms: Date.now() - started };
}

describe("shutdown", () => {
  test("SIGTERM with clients connected over every transport exits 0 and disconnects them", async (t) => {
    const server = await serverForTest(t);
    const pairs = [];
    for (const transport of TRANSPORTS) pairs.push(await pair(server, transport));
    const { code } = await terminate(server);
    assert.equal(code, 0);
    for (const { agent, customer } of pairs) {
      await waitForDisconnect(agent.socket, 2_000);
      await waitForDisconnect(customer.socket, 2_000);
    }
  });

  test("SIGTERM exits promptly while a polling client is between its handshake and its connect", async (t) => {
    const server = await serverForTest(t);
    // What a client's first round trips look like before it sends the Socket.IO CONNECT: the
    // Engine.IO handshake, then a long-poll GET the server holds open.
    const base = `${server.url}/socket.io/?EIO=4&transport=polling`;
    const handshake = await (await fetch(base)).text();
    assert.match(handshake, /^0\{/, `Engine.IO handshake: ${handshake}`);
    const { sid } = JSON.parse(handshake.slice(1));
    const polls = [];
    for (let i = 0; i < 2; i++) {
      const poll = fetch(`${base}&sid=${sid}`).then((r) => r.text()).catch(() => "");
      const answered = await Promise.race([poll.then(() => true), sleep(300).then(() => false)]);
      if (!answered) {
        polls.push(poll);
        break;
      }
      await fetch(`${base}&sid=${sid}`, { method: "POST", body: "3" }); // pong
    }
    assert.equal(polls.length, 1, "the server answered every long-poll at once; nothing is pending");
    const { code } = await terminate(server);
    assert.equal(code, 0);
  });
});
