import { describe, expect, it } from "vitest";
import { contrastText, isToFrame, isToHost, parseEmbedParams, safeColor, safeOrigin } from "./embed";

describe("safeColor", () => {
  it("accepts hex colours only", () => {
    expect(safeColor("#0A7")).toBe("#0a7");
    expect(safeColor(" #1e90ff ")).toBe("#1e90ff");
    expect(safeColor("red")).toBeNull();
    expect(safeColor("#fff; background:url(x)")).toBeNull();
    expect(safeColor(undefined)).toBeNull();
  });
});

describe("safeOrigin", () => {
  it("accepts an exact http(s) origin", () => {
    expect(safeOrigin("https://shop.example")).toBe("https://shop.example");
    expect(safeOrigin("http://127.0.0.1:8080")).toBe("http://127.0.0.1:8080");
  });
  it("refuses paths, other schemes and the opaque origin", () => {
    expect(safeOrigin("https://shop.example/page")).toBeNull();
    expect(safeOrigin("javascript:alert(1)")).toBeNull();
    expect(safeOrigin("null")).toBeNull();
    expect(safeOrigin("*")).toBeNull();
  });
});

describe("parseEmbedParams", () => {
  it("reads what the loader passes", () => {
    expect(parseEmbedParams("?embed=1&origin=https%3A%2F%2Fshop.example&title=Help&color=%23123456")).toEqual({
      embedded: true,
      hostOrigin: "https://shop.example",
      title: "Help",
      color: "#123456",
    });
  });
  it("is not embedded without embed=1", () => {
    expect(parseEmbedParams("")).toEqual({ embedded: false, hostOrigin: null, title: null, color: null });
  });
});

describe("message guards", () => {
  it("accept only well-formed kefu messages", () => {
    expect(isToHost({ source: "kefu", type: "unread", count: 2 })).toBe(true);
    expect(isToHost({ source: "kefu", type: "unread", count: -1 })).toBe(false);
    expect(isToHost({ source: "kefu", type: "unread", count: "2" })).toBe(false);
    expect(isToHost({ source: "other", type: "close" })).toBe(false);
    expect(isToHost({ source: "kefu", type: "close" })).toBe(true);
    expect(isToHost({ source: "kefu", type: "conversation", open: false })).toBe(true);
    expect(isToHost({ source: "kefu", type: "conversation", open: "yes" })).toBe(false);
    expect(isToHost({ source: "kefu", type: "conversation" })).toBe(false);
    expect(isToFrame({ source: "kefu", type: "visibility", open: true })).toBe(true);
    expect(isToFrame({ source: "kefu", type: "visibility", open: 1 })).toBe(false);
    expect(isToFrame(null)).toBe(false);
  });
});

describe("contrastText", () => {
  it("puts dark text on light colours and white on dark ones", () => {
    expect(contrastText("#ffd400")).toBe("#1b2430");
    expect(contrastText("#2f6bd8")).toBe("#ffffff");
    expect(contrastText("#fff")).toBe("#1b2430");
  });
});
