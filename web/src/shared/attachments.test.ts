import { describe, expect, it } from "vitest";
import { captionOf, formatBytes, withToken } from "./attachments";

describe("withToken", () => {
  it("adds the token as the query of a plain URL", () => {
    expect(withToken("/api/attachments/7", "a.b+c")).toBe("/api/attachments/7?token=a.b%2Bc");
  });
  it("adds the token to a query that is already there, before any fragment", () => {
    expect(withToken("/api/attachments/7?download=1#x", "t")).toBe("/api/attachments/7?download=1&token=t#x");
  });
});

describe("formatBytes", () => {
  it("shows bytes, kilobytes and megabytes the way people read them", () => {
    expect(formatBytes(512)).toBe("512 B");
    expect(formatBytes(1536)).toBe("1.5 KB");
    expect(formatBytes(2048)).toBe("2 KB");
    expect(formatBytes(25 * 1024)).toBe("25 KB");
    expect(formatBytes(10 * 1024 * 1024)).toBe("10 MB");
  });
});

describe("captionOf", () => {
  it("hides a caption that only repeats the file name", () => {
    expect(captionOf("invoice.pdf", { name: "invoice.pdf" })).toBe("");
    expect(captionOf("  ", { name: "invoice.pdf" })).toBe("");
    expect(captionOf("my invoice", { name: "invoice.pdf" })).toBe("my invoice");
  });
});
