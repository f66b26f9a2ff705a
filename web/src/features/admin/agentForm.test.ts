import { describe, expect, it } from "vitest";
import { validateAgent } from "./agentForm";

describe("validateAgent", () => {
  const ok = { username: "Ann.Lee", password: "correct horse", displayName: "Ann" };
  it("accepts what the server accepts (usernames are lower-cased)", () => {
    expect(validateAgent(ok)).toEqual({});
  });
  it("refuses short or odd usernames", () => {
    expect(validateAgent({ ...ok, username: "ab" }).username).toBe("admin.usernameInvalid");
    expect(validateAgent({ ...ok, username: "ann lee" }).username).toBe("admin.usernameInvalid");
    expect(validateAgent({ ...ok, username: "a".repeat(33) }).username).toBe("admin.usernameInvalid");
  });
  it("wants passwords of 8 to 128 characters", () => {
    expect(validateAgent({ ...ok, password: "1234567" }).password).toBe("admin.passwordInvalid");
    expect(validateAgent({ ...ok, password: "x".repeat(129) }).password).toBe("admin.passwordInvalid");
  });
  it("limits display names to 64 characters", () => {
    expect(validateAgent({ ...ok, displayName: "名".repeat(65) }).displayName).toBe("admin.displayNameInvalid");
    expect(validateAgent({ ...ok, displayName: "" })).toEqual({});
  });
});
