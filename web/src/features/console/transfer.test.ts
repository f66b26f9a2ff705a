import { describe, expect, it } from "vitest";
import type { AvailableAgent } from "../../shared/protocol";
import { defaultTarget, ineligible, transferTargets } from "./transfer";

function agent(id: string, displayName: string, more: Partial<AvailableAgent> = {}): AvailableAgent {
  return { id, role: "agent", username: displayName.toLowerCase(), displayName, status: "available", online: true, openConversations: 0, capacity: 5, ...more };
}

describe("ineligible", () => {
  it("accepts an online, available agent below capacity", () => {
    expect(ineligible(agent("1", "Ann", { openConversations: 4 }))).toBeNull();
  });
  it("says why the server would refuse an agent", () => {
    expect(ineligible(agent("1", "Ann", { online: false }))).toBe("offline");
    expect(ineligible(agent("1", "Ann", { status: "away" }))).toBe("away");
    expect(ineligible(agent("1", "Ann", { openConversations: 5 }))).toBe("full");
  });
});

describe("transferTargets", () => {
  const list = [
    agent("1", "Me"),
    agent("2", "Zoe", { openConversations: 1 }),
    agent("3", "Bob", { openConversations: 4 }),
    agent("4", "Cid", { online: false }),
    agent("5", "Dee", { status: "away" }),
    agent("6", "Eve", { openConversations: 5 }),
  ];

  it("leaves me out and lists who can take it first, the most free capacity first", () => {
    expect(transferTargets(list, "1").map((t) => t.agent.displayName)).toEqual(["Zoe", "Bob", "Eve", "Dee", "Cid"]);
  });

  it("selects the agent with the most room, or the queue when nobody can take it", () => {
    expect(defaultTarget(transferTargets(list, "1"))).toBe("2");
    expect(defaultTarget(transferTargets([agent("4", "Cid", { online: false })], "1"))).toBeNull();
  });
});
