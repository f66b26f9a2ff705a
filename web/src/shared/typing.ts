// Throttled typing notifications: `typing true` when the user starts (and again every `resendMs`
// while they keep typing, so a receiver that clears stale indicators keeps showing it), `typing false`
// after `idleMs` without input, on send, or on blur.

export interface TypingSender {
  /** Call on every keystroke that changes the draft. */
  input(): void;
  /** The user sent the message or left the composer. */
  stop(): void;
}

export interface TypingOptions {
  send: (typing: boolean) => void;
  idleMs?: number;
  resendMs?: number;
  now?: () => number;
}

export function createTypingSender({ send, idleMs = 3000, resendMs = 4000, now = Date.now }: TypingOptions): TypingSender {
  let typing = false;
  let lastSent = 0;
  let idle: ReturnType<typeof setTimeout> | undefined;

  const stop = () => {
    if (idle !== undefined) clearTimeout(idle);
    idle = undefined;
    if (typing) {
      typing = false;
      send(false);
    }
  };

  return {
    input() {
      const t = now();
      if (!typing || t - lastSent >= resendMs) {
        typing = true;
        lastSent = t;
        send(true);
      }
      if (idle !== undefined) clearTimeout(idle);
      idle = setTimeout(stop, idleMs);
    },
    stop,
  };
}

/** How long a received "typing" stays shown without a refresh, in case the "false" is lost. */
export const TYPING_STALE_MS = 6000;
