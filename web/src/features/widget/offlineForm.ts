// Pure logic of the offline form (留言): which fields to ask for (only what kefu does not know of the
// customer), checks that match the server's (POST /api/offline-messages answers invalid_payload for
// the same), where focus goes on a failed submit, and the request body.
import type { ContactResponse, OfflineMessageRequest } from "../../shared/offline";
import { MAX_CONTENT_BYTES } from "../../shared/protocol";

export type OfflineField = "name" | "email" | "phone" | "content";
/** The fields in the order the form shows them: the first invalid one gets the focus. */
export const FIELD_ORDER: readonly OfflineField[] = ["name", "email", "phone", "content"];

export const MAX_NAME_CHARS = 80;
export const MAX_EMAIL_CHARS = 254;

export interface OfflineValues {
  name: string;
  email: string;
  phone: string;
  content: string;
}

/** What the form asks; `content` always. */
export interface Asked {
  name: boolean;
  email: boolean;
  phone: boolean;
}

/**
 * Ask only for what kefu lacks. Without an answer (the request failed), ask for name and e-mail: a
 * message without a way to reply would be lost, and the server keeps what it already has.
 */
export function fieldsToAsk(contact: ContactResponse | null): Asked {
  if (!contact) return { name: true, email: true, phone: true };
  const missing = (v: string | null | undefined) => !(typeof v === "string" && v.trim() !== "");
  return { name: missing(contact.name), email: missing(contact.email), phone: missing(contact.phone) };
}

export type FieldError = "required" | "tooLong" | "email" | "phone" | "tooLarge";
export type OfflineErrors = Partial<Record<OfflineField, FieldError>>;

const EMAIL = /^[^\s@]+@[^\s@.]+(?:\.[^\s@.]+)+$/;
const PHONE = /^[0-9 +\-()]{3,32}$/;

const chars = (s: string) => [...s].length;
export const utf8Bytes = (s: string) => new TextEncoder().encode(s).length;

export function validateOffline(v: OfflineValues, ask: Asked, maxContentBytes = MAX_CONTENT_BYTES): OfflineErrors {
  const errors: OfflineErrors = {};
  if (ask.name) {
    const name = v.name.trim();
    if (!name) errors.name = "required";
    else if (chars(name) > MAX_NAME_CHARS) errors.name = "tooLong";
  }
  if (ask.email) {
    const email = v.email.trim();
    if (!email) errors.email = "required";
    else if (email.length > MAX_EMAIL_CHARS || !EMAIL.test(email)) errors.email = "email";
  }
  if (ask.phone) {
    const phone = v.phone.trim();
    if (phone && !PHONE.test(phone)) errors.phone = "phone";
  }
  const content = v.content.trim();
  if (!content) errors.content = "required";
  else if (utf8Bytes(content) > maxContentBytes) errors.content = "tooLarge";
  return errors;
}

export function firstInvalid(errors: OfflineErrors): OfflineField | null {
  return FIELD_ORDER.find((f) => errors[f] !== undefined) ?? null;
}

/** The body: only the fields asked for and filled in, trimmed. */
export function offlineRequest(v: OfflineValues, ask: Asked, clientMsgId?: string): OfflineMessageRequest {
  const body: OfflineMessageRequest = { content: v.content.trim() };
  if (ask.name && v.name.trim()) body.name = v.name.trim();
  if (ask.email && v.email.trim()) body.email = v.email.trim();
  if (ask.phone && v.phone.trim()) body.phone = v.phone.trim();
  if (clientMsgId) body.clientMsgId = clientMsgId;
  return body;
}

/** Where replies go: the address just typed, else the one kefu knew. */
export function replyAddress(v: OfflineValues, ask: Asked, contact: ContactResponse | null): string | null {
  if (ask.email && v.email.trim()) return v.email.trim();
  return contact?.email?.trim() || null;
}
