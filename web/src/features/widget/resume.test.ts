import { describe, expect, it } from "vitest";
import { requestedAgentId, takeResumeToken } from "./resume";

describe("takeResumeToken", () => {
  it("takes the token and leaves the rest of the address", () => {
    expect(takeResumeToken("https://kefu.example/chat?resume=abc.def&lang=en#x")).toEqual({ token: "abc.def", cleanUrl: "/chat?lang=en#x" });
    expect(takeResumeToken("https://kefu.example/chat?resume=abc")).toEqual({ token: "abc", cleanUrl: "/chat" });
  });
  it("is null without a resume link", () => {
    expect(takeResumeToken("https://kefu.example/chat?embed=1")).toBeNull();
  });
  it("still cleans the address of an empty token", () => {
    expect(takeResumeToken("https://kefu.example/chat?resume=")).toEqual({ token: "", cleanUrl: "/chat" });
  });
});

describe("requestedAgentId", () => {
  it("is the id of ?agent=, digits only", () => {
    expect(requestedAgentId("?agent=17")).toBe("17");
    expect(requestedAgentId("?agent=alice")).toBeNull();
    expect(requestedAgentId("")).toBeNull();
  });
});
