import { describe, expect, it } from "vitest";
import { parseSession } from "./session";

describe("parseSession", () => {
  const user = { id: "12", role: "customer", username: "visitor-1", displayName: "Visitor 1" };
  it("reads a stored session", () => {
    expect(parseSession(JSON.stringify({ token: "t", user }))).toEqual({ token: "t", user });
  });
  it("ignores anything malformed", () => {
    expect(parseSession(null)).toBeNull();
    expect(parseSession("{")).toBeNull();
    expect(parseSession(JSON.stringify({ token: "", user }))).toBeNull();
    expect(parseSession(JSON.stringify({ token: "t", user: { ...user, role: "root" } }))).toBeNull();
  });
});
