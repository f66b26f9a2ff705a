import { describe, expect, it } from "vitest";
import { ApiError } from "./api";
import { failureOf, reasonText } from "./errors";
import { translate, type MessageKey } from "./i18n";
import { ChatError } from "./useChatSocket";

const t = (k: MessageKey) => translate("en", k);

describe("reasonText", () => {
  it("shows the server's reason, e.g. why a transfer was refused", () => {
    const f = failureOf(new ChatError("conflict", "Bob is away"));
    expect(reasonText(f, t)).toBe("Bob is away");
  });
  it("shows the server's hint for a text over the size limit", () => {
    const f = failureOf(new ChatError("too_large", "message over 8192 bytes: send it as a file"));
    expect(reasonText(f, t)).toBe("message over 8192 bytes: send it as a file");
  });
  it("says the server could not be reached rather than echoing a transport error", () => {
    expect(reasonText(failureOf(new ApiError(0, "network", "Failed to fetch")), t)).toBe("Can't reach the server. Please try again.");
    expect(reasonText(failureOf(new ChatError("timeout", "resolve: no answer within 10000 ms")), t)).toMatch(/didn't answer in time/);
  });
  it("falls back to a sentence per code without a server message", () => {
    expect(reasonText({ code: "unsupported_type", message: "" }, t)).toMatch(/can't be sent/);
    expect(reasonText(failureOf(new Error("boom")), t)).toBe("Something went wrong. Please try again.");
  });
});
