// The wire types of the offline path (availability, the offline form, business hours, resume
// links, transcripts by e-mail), under the names the UI uses. They are generated from the server's
// Rust types into protocol.gen.ts (docs/protocol.md); this file only names them.
import type {
  AvailabilityBody,
  ContactBody,
  HoursBody,
  HoursInterval,
  OfflineMessageRequest as OfflineMessageRequestBody,
  OfflineMessageResponse as OfflineMessageResponseBody,
  RequestedAgentBody,
  ResumeRequest as ResumeRequestBody,
  SessionResponse,
  TranscriptEmailed,
} from "./protocol.gen";

/** `GET /api/availability` (no token): what a visitor opening the chat can expect now. */
export type Availability = AvailabilityBody;
export type AvailabilityState = AvailabilityBody["state"];

/** `GET /api/me/contact` (customer): what kefu knows; `name` is null while it is the generated one. */
export type ContactResponse = ContactBody;

/** `POST /api/offline-messages` (customer). Name and e-mail only when kefu does not know them. */
export type OfflineMessageRequest = OfflineMessageRequestBody;

/** 201 to `POST /api/offline-messages`. */
export type OfflineMessageResponse = OfflineMessageResponseBody;

/** The login ack's `requestedAgent`, when the customer named an agent (`csId`). */
export type RequestedAgent = RequestedAgentBody;

/** `POST /api/visitors/resume` body; the answer is a SessionResponse, as `POST /api/visitors`. */
export type ResumeRequest = ResumeRequestBody;
export type ResumeResponse = SessionResponse;

/** 202 to `POST /api/conversations/{id}/transcript/email`. */
export type TranscriptEmailResponse = TranscriptEmailed;

export type Weekday = "mon" | "tue" | "wed" | "thu" | "fri" | "sat" | "sun";
export const WEEKDAYS: readonly Weekday[] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/** One opening of `GET/PUT /api/admin/hours`: "HH:MM"; close "24:00" allowed; close <= open runs past midnight. */
export type OpeningInterval = HoursInterval;

/** `GET /api/admin/hours` and the body of `PUT /api/admin/hours` (admin); `enabled: false` is always open. */
export type BusinessHours = HoursBody;

/** How a conversation ended besides a resolve by its agent. */
export type EndedAs = "abandoned" | "idle";
