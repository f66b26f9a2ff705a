// A failed request in words: the server's own message says why (a transfer's `conflict` names the
// reason, a text over the limit suggests a file); without one, a sentence per error code.
import type { MessageKey } from "./i18n";

export interface Failure {
  code: string;
  message: string;
}

/** The code and message of an ApiError, a ChatError, or anything thrown. */
export function failureOf(e: unknown): Failure {
  if (e && typeof e === "object" && "code" in e && typeof (e as { code: unknown }).code === "string") {
    const message = (e as { message?: unknown }).message;
    return { code: (e as { code: string }).code, message: typeof message === "string" ? message : "" };
  }
  return { code: "internal", message: "" };
}

const byCode: Record<string, MessageKey> = {
  network: "error.network",
  timeout: "error.timeout",
  rate_limited: "error.rate_limited",
  unsupported_type: "error.unsupported_type",
  too_large: "error.too_large",
};

/**
 * What to tell the user. Transport failures (no answer, no network) have no server message worth
 * showing; for the others the server's message wins when it has one.
 */
export function reasonText(f: Failure, t: (key: MessageKey) => string): string {
  if (f.code === "network" || f.code === "timeout") return t(byCode[f.code]!);
  if (f.message.trim()) return f.message;
  return t(byCode[f.code] ?? "error.generic");
}
