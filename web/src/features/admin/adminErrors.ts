// What the admin page does with a failed request: sign out (the token is no longer an admin's), or
// say plainly what went wrong and keep the last data on screen.
import { ApiError } from "../../shared/api";
import type { MessageKey } from "../../shared/i18n";

export type SignOutReason = "expired" | "notAdmin";

export type AdminFailure = { signOut: SignOutReason } | { message: MessageKey };

/** For the admin routes' reads: 401 and 403 mean this token cannot administer (any more). */
export function classifyLoadError(e: unknown): AdminFailure {
  if (e instanceof ApiError) {
    switch (e.code) {
      case "unauthorized":
        return { signOut: "expired" };
      case "forbidden":
        return { signOut: "notAdmin" };
      case "network":
        return { message: "admin.unreachable" };
      case "unavailable":
        return { message: "admin.dbDown" };
      default:
        return { message: "admin.serverError" };
    }
  }
  return { message: "admin.serverError" };
}

/**
 * For enabling or disabling an account: 403 here is the server refusing this change (e.g. an admin
 * disabling itself), not proof that the token lost its rights, so it is shown, not acted upon.
 */
export function classifyToggleError(e: unknown): AdminFailure {
  if (e instanceof ApiError) {
    if (e.code === "forbidden") return { message: "admin.toggleForbidden" };
    if (e.code === "not_found") return { message: "admin.notFound" };
  }
  return classifyLoadError(e);
}
