import { describe, expect, it } from "vitest";
import { avatarHue, formatDay, initials, utf8Length } from "./format";

describe("initials", () => {
  it("takes the first letters of the first and last words", () => {
    expect(initials("Ann Lee")).toBe("AL");
    expect(initials("mary jane watson")).toBe("MW");
    expect(initials("Visitor 7f3a")).toBe("V7");
  });
  it("uses the given name of a Chinese name", () => {
    expect(initials("王小明")).toBe("小明");
  });
  it("never returns an empty string", () => {
    expect(initials("  ")).toBe("?");
  });
});

describe("avatarHue", () => {
  it("is stable for an id", () => {
    expect(avatarHue("12")).toBe(avatarHue("12"));
  });
});

describe("formatDay", () => {
  const labels = { today: "Today", yesterday: "Yesterday" };
  const now = new Date(2026, 10, 26, 15, 0);
  it("says today and yesterday", () => {
    expect(formatDay(new Date(2026, 10, 26, 1, 0).toISOString(), "en", labels, now)).toBe("Today");
    expect(formatDay(new Date(2026, 10, 25, 23, 0).toISOString(), "en", labels, now)).toBe("Yesterday");
  });
  it("gives a date otherwise", () => {
    expect(formatDay(new Date(2026, 10, 20, 12, 0).toISOString(), "en", labels, now)).toMatch(/Nov/);
  });
});

describe("utf8Length", () => {
  it("counts bytes, as the server's limit does", () => {
    expect(utf8Length("ab")).toBe(2);
    expect(utf8Length("你好")).toBe(6);
  });
});
