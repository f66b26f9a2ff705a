import { describe, expect, it } from "vitest";
import type { AgentSummary } from "../../shared/protocol";
import {
  agentTotals,
  canDisable,
  filterAgents,
  availabilityOf,
  hasCapacity,
  parseCapacity,
  sortAgents,
  withCapacity,
  withCreated,
  withDisabled,
} from "./agents";

function agent(id: string, displayName: string, more: Partial<AgentSummary> = {}): AgentSummary {
  return {
    id,
    role: "agent",
    username: displayName.toLowerCase().replace(/\s+/g, "."),
    displayName,
    disabled: false,
    online: false,
    connections: 0,
    openConversations: 0,
    capacity: 5,
    status: "available",
    ...more,
  };
}

const ann = agent("2", "Ann Lee", { online: true, connections: 2, openConversations: 1 });
const bob = agent("3", "bob", { openConversations: 4 });
const cid = agent("4", "Cid", { disabled: true });
const admin = agent("1", "Administrator", { role: "admin", username: "admin" });
const zhou = agent("5", "Zhou", { online: true, connections: 1, openConversations: 4 });
const all = [zhou, cid, bob, admin, ann];

describe("sortAgents", () => {
  it("orders by name regardless of case, so rows do not move when presence changes", () => {
    expect(sortAgents(all, "name", "en").map((a) => a.displayName)).toEqual(["Administrator", "Ann Lee", "bob", "Cid", "Zhou"]);
  });
  it("puts online accounts first and disabled ones last", () => {
    expect(sortAgents(all, "status", "en").map((a) => a.id)).toEqual(["2", "5", "1", "3", "4"]);
  });
  it("puts the busiest first, then the most connected", () => {
    expect(sortAgents(all, "load", "en").map((a) => a.id)).toEqual(["5", "3", "2", "1", "4"]);
  });
  it("breaks name ties with the username and does not change its input", () => {
    const twins = [agent("8", "Sam", { username: "sam2" }), agent("9", "Sam", { username: "sam1" })];
    expect(sortAgents(twins, "name", "en").map((a) => a.username)).toEqual(["sam1", "sam2"]);
    expect(twins.map((a) => a.username)).toEqual(["sam2", "sam1"]);
  });
  it("sorts numbers in names naturally", () => {
    const n = [agent("1", "Agent 10"), agent("2", "Agent 9")];
    expect(sortAgents(n, "name", "en").map((a) => a.displayName)).toEqual(["Agent 9", "Agent 10"]);
  });
});

describe("filterAgents", () => {
  it("matches the display name or the username, ignoring case", () => {
    expect(filterAgents(all, "ANN").map((a) => a.id)).toEqual(["2"]);
    expect(filterAgents(all, "ann.lee").map((a) => a.id)).toEqual(["2"]);
    expect(filterAgents(all, "admin").map((a) => a.id)).toEqual(["1"]);
  });
  it("wants every word", () => {
    expect(filterAgents(all, "ann lee").map((a) => a.id)).toEqual(["2"]);
    expect(filterAgents(all, "ann bob")).toEqual([]);
  });
  it("keeps everything for an empty query", () => {
    expect(filterAgents(all, "  ")).toHaveLength(all.length);
  });
});

describe("agentTotals", () => {
  it("counts accounts, online, disabled and open conversations", () => {
    expect(agentTotals(all)).toEqual({ accounts: 5, online: 2, disabled: 1, openConversations: 9 });
    expect(agentTotals([])).toEqual({ accounts: 0, online: 0, disabled: 0, openConversations: 0 });
  });
});

describe("canDisable", () => {
  it("never offers an admin to disable itself", () => {
    expect(canDisable(admin, "1")).toBe(false);
    expect(canDisable(ann, "1")).toBe(true);
  });
  it("does not offer to disable a disabled account", () => {
    expect(canDisable(cid, "1")).toBe(false);
  });
});

describe("withCreated", () => {
  it("adds a new account as offline with no load and the default capacity", () => {
    const list = withCreated([ann], { id: "7", role: "agent", username: "dee", displayName: "Dee" });
    expect(list[1]).toEqual({
      id: "7",
      role: "agent",
      username: "dee",
      displayName: "Dee",
      disabled: false,
      online: false,
      connections: 0,
      openConversations: 0,
      capacity: 5,
      status: "available",
    });
  });
  it("does not add an account the list already has", () => {
    expect(withCreated([ann], ann)).toEqual([ann]);
  });
});

describe("withDisabled", () => {
  it("disabling also takes the account offline", () => {
    const [a] = withDisabled([ann], "2", true);
    expect(a).toMatchObject({ disabled: true, online: false, connections: 0, openConversations: 1 });
  });
  it("enabling does not invent a connection", () => {
    const [c] = withDisabled([cid], "4", false);
    expect(c).toMatchObject({ disabled: false, online: false, connections: 0 });
  });
});

describe("capacity", () => {
  it("accepts a whole number from 1 to 100", () => {
    expect(parseCapacity("1")).toBe(1);
    expect(parseCapacity(" 100 ")).toBe(100);
    expect(parseCapacity(7)).toBe(7);
  });
  it("refuses zero, more than the server's maximum, fractions and words", () => {
    for (const v of ["0", "10001", "2.5", "", "five", "-3"]) expect(parseCapacity(v)).toBeNull();
  });
  it("changes only the edited row", () => {
    const list = withCapacity([ann, agent("3", "Bo")], "3", 2);
    expect(list.map((a) => a.capacity)).toEqual([5, 2]);
  });
  it("applies to agents, not to admins, whom routing never picks", () => {
    expect(hasCapacity(ann)).toBe(true);
    expect(hasCapacity(agent("9", "Root", { role: "admin" }))).toBe(false);
  });
});

describe("availability", () => {
  it("is what an agent set: available or away", () => {
    expect(availabilityOf(ann)).toBe("available");
    expect(availabilityOf(agent("3", "Bo", { status: "away" }))).toBe("away");
  });
  it("is none for an admin, whom routing never gives a conversation, whatever the server's status says", () => {
    expect(availabilityOf(agent("1", "Administrator", { role: "admin", status: "available" }))).toBe("none");
  });
  it("is none for a disabled agent, who takes no conversation either", () => {
    expect(availabilityOf(agent("4", "Cy", { disabled: true, status: "available" }))).toBe("none");
  });
});
