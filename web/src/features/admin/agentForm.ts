// Client-side checks of the create-agent form, the same rules as the server's (docs/protocol.md),
// so mistakes show next to the field before a round trip. The server stays the authority.
import type { MessageKey } from "../../shared/i18n";

export interface AgentDraft {
  username: string;
  password: string;
  displayName: string;
}

export type AgentErrors = Partial<Record<keyof AgentDraft, MessageKey>>;

export function normalizeUsername(v: string): string {
  return v.trim().toLowerCase();
}

export function validateAgent(d: AgentDraft): AgentErrors {
  const errors: AgentErrors = {};
  if (!/^[a-z0-9._-]{3,32}$/.test(normalizeUsername(d.username))) errors.username = "admin.usernameInvalid";
  const pw = Array.from(d.password).length;
  if (pw < 8 || pw > 128) errors.password = "admin.passwordInvalid";
  if (Array.from(d.displayName.trim()).length > 64) errors.displayName = "admin.displayNameInvalid";
  return errors;
}
