// Test double of a socket.io-client Socket: just enough for useChatSocket. Server events are fired by
// the test; requests are answered by `respond` (a promise holds the ack back; undefined times out).

type Handler = (...args: unknown[]) => void;
export type Responder = (event: string, payload: unknown) => unknown;

export class FakeSocket {
  connected = false;
  /** Set to refuse the next handshakes, as the server does for a disabled account. */
  refuse = false;
  emitted: Array<{ event: string; payload: unknown }> = [];
  private handlers = new Map<string, Handler[]>();
  constructor(public respond: Responder) {}

  on(event: string, fn: Handler) {
    this.handlers.set(event, [...(this.handlers.get(event) ?? []), fn]);
    return this;
  }
  fire(event: string, ...args: unknown[]) {
    for (const fn of this.handlers.get(event) ?? []) fn(...args);
  }
  connect() {
    if (this.refuse) {
      this.fire("connect_error", new Error("unauthorized"));
      return this;
    }
    this.connected = true;
    this.fire("connect");
    return this;
  }
  drop(reason = "transport close") {
    this.connected = false;
    this.fire("disconnect", reason);
  }
  disconnect() {
    if (this.connected) this.drop("io client disconnect");
    return this;
  }
  timeout() {
    return {
      emitWithAck: async (event: string, payload?: unknown) => {
        this.emitted.push({ event, payload });
        const answer = await this.respond(event, payload);
        if (answer === undefined) throw new Error("operation has timed out");
        return answer;
      },
    };
  }
}

/** Lets pending promises and zero-delay timers run. */
export const flush = async (turns = 5) => {
  for (let i = 0; i < turns; i++) await new Promise((r) => setTimeout(r, 0));
};
