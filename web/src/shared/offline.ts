// HAND-WRITTEN WIRE TYPES for issue 15 (the offline path, business hours, resume links, transcripts
// by e-mail). They mirror docs/protocol.md and the contract the server is being built to; once the
// server's Rust types exist, `KEFU_WRITE_TS=1 cargo test -p kefu --lib protocol` generates them into
// protocol.gen.ts and this file goes: import them from "./protocol" instead. Nothing else in the UI
// declares these shapes.
import type { ConversationId, Message, SessionResponse, UserId } from "./protocol.gen";

/** `GET /api/availability` (no token): what a visitor opening the chat can expect now. */
export type AvailabilityState = "open" | "busy" | "away" | "closed";

export interface Availability {
  state: AvailabilityState;
  /** Online, available (not away), enabled staff. */
  agentsAvailable: number;
  /** Conversations waiting now. */
  queueLength: number;
  /** busy: the wait a newcomer can expect; null otherwise. */
  estimateSeconds: number | null;
  /** closed: ms since the epoch of the next opening; null when none is scheduled. */
  opensAt: number | null;
  /** The shop's IANA time zone. */
  timeZone: string;
}

/** `GET /api/me/contact` (customer): what kefu knows; `name` is null while it is the generated one. */
export interface ContactResponse {
  name: string | null;
  email: string | null;
  phone: string | null;
}

/** `POST /api/offline-messages` (customer). Name and e-mail only when kefu does not know them. */
export interface OfflineMessageRequest {
  name?: string;
  email?: string;
  phone?: string;
  content: string;
  clientMsgId?: string;
}

/** 201 to `POST /api/offline-messages`. */
export interface OfflineMessageResponse {
  conversationId: ConversationId;
  /** The stored message, as a history item. */
  message: Message;
  /** Its place in the queue; null when an agent has the conversation. */
  place: number | null;
}

/** The login ack's `requestedAgent`, when the customer named an agent (`csId`). */
export interface RequestedAgent {
  id: UserId;
  online: boolean;
  /** ms since the epoch until which the conversation waits for that agent, then the queue. */
  waitsUntil: number | null;
}

/** `POST /api/visitors/resume` body; the answer is a SessionResponse, as `POST /api/visitors`. */
export interface ResumeRequest {
  token: string;
}
export type ResumeResponse = SessionResponse;

/** 202 to `POST /api/conversations/{id}/transcript/email`. */
export interface TranscriptEmailResponse {
  to: string;
}

export type Weekday = "mon" | "tue" | "wed" | "thu" | "fri" | "sat" | "sun";
export const WEEKDAYS: readonly Weekday[] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

/** One opening of `GET/PUT /api/admin/hours`: "HH:MM"; close "24:00" allowed; close <= open runs past midnight. */
export interface OpeningInterval {
  day: Weekday;
  open: string;
  close: string;
}

/** `GET /api/admin/hours` and the body of `PUT /api/admin/hours` (admin). */
export interface BusinessHours {
  /** false: always open (the default). */
  enabled: boolean;
  timeZone: string;
  weekly: OpeningInterval[];
  /** "YYYY-MM-DD" in the shop's time zone. */
  closedDays: string[];
}

/** How a conversation ended besides a resolve by its agent. */
export type EndedAs = "abandoned" | "idle";

/** What conversation rows (`/api/conversations`, `/api/admin/conversations`, `myUsersList`) gain. */
export interface OfflineFields {
  offline?: boolean;
  endedAs?: EndedAs | null;
}

/**
 * What the console would need to show a customer's contact in a conversation's header. The contract
 * does not say yet how the agent gets it; the UI shows these when a member entry carries them.
 */
export interface ContactFields {
  email?: string | null;
  phone?: string | null;
}

/** What `/api/admin/reports` gains. */
export interface AbandonReport {
  abandoned?: number;
  abandonWaitSeconds?: number | null;
}
