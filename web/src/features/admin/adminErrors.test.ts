import { describe, expect, it } from "vitest";
import { ApiError } from "../../shared/api";
import { classifyLoadError, classifyToggleError } from "./adminErrors";

describe("classifyLoadError", () => {
  it("signs out when the token is refused or is not an admin's", () => {
    expect(classifyLoadError(new ApiError(401, "unauthorized", ""))).toEqual({ signOut: "expired" });
    expect(classifyLoadError(new ApiError(403, "forbidden", ""))).toEqual({ signOut: "notAdmin" });
  });
  it("says what went wrong otherwise", () => {
    expect(classifyLoadError(new ApiError(0, "network", ""))).toEqual({ message: "admin.unreachable" });
    expect(classifyLoadError(new ApiError(503, "unavailable", ""))).toEqual({ message: "admin.dbDown" });
    expect(classifyLoadError(new ApiError(500, "internal", ""))).toEqual({ message: "admin.serverError" });
    expect(classifyLoadError(new Error("boom"))).toEqual({ message: "admin.serverError" });
  });
});

describe("classifyToggleError", () => {
  it("shows a refused change instead of signing out", () => {
    expect(classifyToggleError(new ApiError(403, "forbidden", ""))).toEqual({ message: "admin.toggleForbidden" });
    expect(classifyToggleError(new ApiError(404, "not_found", ""))).toEqual({ message: "admin.notFound" });
  });
  it("still signs out when the token is refused", () => {
    expect(classifyToggleError(new ApiError(401, "unauthorized", ""))).toEqual({ signOut: "expired" });
  });
});
