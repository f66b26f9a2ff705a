// When the loader loads the chat (its iframe, ~200 KB): a page view of a shop costs only widget.js
// unless the visitor opens the chat, or has an open conversation, whose unread badge must keep working
// while the chat is closed. The chat tells the page whether there is one (`conversation` in
// shared/embed.ts); the page remembers it in its own localStorage (the visitor's token stays in the
// chat's origin), and on its next views loads the chat in the background once the page is idle.

/** The shop page's localStorage key; its value is the kefu origin whose chat has the conversation. */
export const OPEN_CONVERSATION_KEY = "kefu.widget.openConversation";
/** The longest a background load waits for the page to go idle (after its `load`). */
export const IDLE_TIMEOUT_MS = 3000;
/** Without requestIdleCallback (Safari): this long after the page's `load`. */
export const IDLE_FALLBACK_MS = 1000;

/** `on-open`: when the visitor first opens the bubble; `when-idle`: in the background, when idle. */
export type FrameLoad = "on-open" | "when-idle";

export type FlagStorage = Pick<Storage, "getItem" | "setItem" | "removeItem">;

/** The page's localStorage, or null where it cannot be used (blocked, sandboxed). */
export function pageStorage(get: () => Storage): FlagStorage | null {
  try {
    return get();
  } catch {
    return null;
  }
}

/** How this page view loads the chat of `kefuOrigin`. */
export function frameLoadFor(storage: FlagStorage | null, kefuOrigin: string): FrameLoad {
  try {
    return storage?.getItem(OPEN_CONVERSATION_KEY) === kefuOrigin ? "when-idle" : "on-open";
  } catch {
    return "on-open";
  }
}

/** What the chat said: this visitor has an open conversation (remember it) or not (forget it). */
export function rememberConversation(storage: FlagStorage | null, kefuOrigin: string, open: boolean): void {
  try {
    if (open) storage?.setItem(OPEN_CONVERSATION_KEY, kefuOrigin);
    else if (storage?.getItem(OPEN_CONVERSATION_KEY) === kefuOrigin) storage.removeItem(OPEN_CONVERSATION_KEY);
  } catch {
    // Not remembered: the next page view loads the chat when it is opened.
  }
}

/** The parts of `window` that `whenIdle` uses. */
export interface IdleHost {
  document: { readyState: DocumentReadyState };
  addEventListener(type: "load", fn: () => void, options: { once: true }): void;
  requestIdleCallback?: (fn: () => void, options: { timeout: number }) => unknown;
  setTimeout(fn: () => void, ms: number): unknown;
}

/**
 * Runs `run` once the page has loaded and then goes idle (at most `IDLE_TIMEOUT_MS` later), so that
 * the chat never competes with the shop's own page for the network.
 */
export function whenIdle(host: IdleHost, run: () => void): void {
  const idle = () => {
    if (typeof host.requestIdleCallback === "function") host.requestIdleCallback(run, { timeout: IDLE_TIMEOUT_MS });
    else host.setTimeout(run, IDLE_FALLBACK_MS);
  };
  if (host.document.readyState === "complete") idle();
  else host.addEventListener("load", idle, { once: true });
}
