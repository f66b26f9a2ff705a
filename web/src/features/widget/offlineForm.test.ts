import { describe, expect, it } from "vitest";
import { fieldsToAsk, firstInvalid, offlineRequest, replyAddress, validateOffline } from "./offlineForm";

const all = { name: true, email: true, phone: true };
const values = { name: "Ann Lee", email: "ann@example.com", phone: "", content: "My order 1234 did not arrive." };

describe("fieldsToAsk", () => {
  it("asks a new visitor for everything", () => {
    expect(fieldsToAsk({ name: null, email: null, phone: null })).toEqual(all);
  });
  it("does not ask a known customer again for what kefu knows", () => {
    expect(fieldsToAsk({ name: "Ann", email: "ann@example.com", phone: null })).toEqual({ name: false, email: false, phone: true });
    expect(fieldsToAsk({ name: "Ann", email: " ", phone: "+86 10 1234" })).toEqual({ name: false, email: true, phone: false });
  });
  it("asks for everything when kefu could not say", () => {
    expect(fieldsToAsk(null)).toEqual(all);
  });
});

describe("validateOffline", () => {
  it("accepts a complete message with or without a phone", () => {
    expect(validateOffline(values, all)).toEqual({});
    expect(validateOffline({ ...values, phone: "+86 (10) 1234-5678" }, all)).toEqual({});
  });
  it("requires a name, an e-mail and the message", () => {
    expect(validateOffline({ name: " ", email: "", phone: "", content: "  " }, all)).toEqual({
      name: "required",
      email: "required",
      content: "required",
    });
  });
  it("rejects what is not an e-mail address, or is longer than 254", () => {
    for (const email of ["ann", "ann@", "ann@example", "a b@example.com", "ann@@example.com"]) {
      expect(validateOffline({ ...values, email }, all).email, email).toBe("email");
    }
    expect(validateOffline({ ...values, email: `${"a".repeat(250)}@b.cn` }, all).email).toBe("email");
  });
  it("rejects a name over 80 characters, counting characters not bytes", () => {
    expect(validateOffline({ ...values, name: "王".repeat(80) }, all).name).toBeUndefined();
    expect(validateOffline({ ...values, name: "a".repeat(81) }, all).name).toBe("tooLong");
  });
  it("rejects a phone that is not 3–32 of digits, spaces and +-()", () => {
    expect(validateOffline({ ...values, phone: "12" }, all).phone).toBe("phone");
    expect(validateOffline({ ...values, phone: "call me" }, all).phone).toBe("phone");
    expect(validateOffline({ ...values, phone: "1".repeat(33) }, all).phone).toBe("phone");
  });
  it("rejects a message over the byte limit", () => {
    expect(validateOffline({ ...values, content: "好".repeat(3) }, all, 9).content).toBeUndefined();
    expect(validateOffline({ ...values, content: "好".repeat(4) }, all, 9).content).toBe("tooLarge");
  });
  it("does not check fields it does not ask for", () => {
    expect(validateOffline({ ...values, name: "", email: "" }, { name: false, email: false, phone: false })).toEqual({});
  });
});

describe("firstInvalid", () => {
  it("is the first invalid field in the form's order", () => {
    expect(firstInvalid({ content: "required", email: "email" })).toBe("email");
    expect(firstInvalid({})).toBeNull();
  });
});

describe("offlineRequest", () => {
  it("sends only what was asked and filled in, trimmed", () => {
    expect(offlineRequest({ ...values, name: " Ann ", phone: " " }, all, "c-1")).toEqual({
      name: "Ann",
      email: "ann@example.com",
      content: "My order 1234 did not arrive.",
      clientMsgId: "c-1",
    });
    expect(offlineRequest(values, { name: false, email: false, phone: false })).toEqual({ content: values.content });
  });
  it("replies go to the address typed, else the one kefu knew", () => {
    expect(replyAddress(values, all, null)).toBe("ann@example.com");
    expect(replyAddress(values, { name: false, email: false, phone: true }, { name: "A", email: "old@example.com", phone: null })).toBe(
      "old@example.com",
    );
  });
});
