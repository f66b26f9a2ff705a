// Generated from the Rust types of crates/kefu/src/protocol (protocol/typescript.rs): do not
// edit. `KEFU_WRITE_TS=1 cargo test -p kefu --lib protocol` writes it again; scripts/test
// fails when it is stale.

/** Every error code of docs/protocol.md. */
export type ErrorCode = "unauthorized" | "forbidden" | "invalid_payload" | "too_large" | "unsupported_type" | "rate_limited" | "not_found" | "unknown_event" | "conflict" | "invalid_token" | "unavailable" | "internal";

/** A conversation is `open` until its agent resolves it. */
export type ConversationStatus = "open" | "resolved";

/** What happened to a conversation besides its messages (a transcript's `events`). */
export type ConversationEventKind = "assigned" | "transferred" | "queued" | "resolved" | "rated" | "abandoned";

/** `system`: written by the server, shown as an info line; `image` and `file` carry an `attachment`. */
export type MessageKind = "text" | "system" | "image" | "file";

/**
 * A user: customer, agent or admin.
 * Travels as a string of digits; parsed from a string or a non-negative integer, since
 * clients of the reference design send numbers.
 */
export type UserId = string;

/**
 * A conversation between one customer and the agents that serve it.
 * Travels as a string of digits; parsed from a string or a non-negative integer, since
 * clients of the reference design send numbers.
 */
export type ConversationId = string;

/**
 * A stored message.
 * Travels as a string of digits; parsed from a string or a non-negative integer, since
 * clients of the reference design send numbers.
 */
export type MessageId = string;

/**
 * An uploaded file.
 * Travels as a string of digits; parsed from a string or a non-negative integer, since
 * clients of the reference design send numbers.
 */
export type AttachmentId = string;

export type Role = "customer" | "agent" | "admin";

/**
 * A user as clients see it.
 */
export type User = { id: UserId, role: Role, username: string, displayName: string, };

export type ErrorBody = { code: ErrorCode, message: string, };

export type AgentStatus = "available" | "away";

export type VisitorRequest = { name?: string, email?: string, };

export type LoginRequest = { username: string, password: string, };

export type SessionResponse = { token: string, user: User, };

export type UserResponse = { user: User, };

export type CreateAgentRequest = { username: string, password: string, displayName?: string, 
/**
 * Where kefu's mails to this agent go (a customer waits, a customer has no answer).
 */
email?: string, };

/**
 * `POST /api/visitors/resume`: the token of a resume link (`/chat?resume=<token>`) from a mail.
 */
export type ResumeRequest = { token: string, };

/**
 * `POST /api/conversations/{id}/transcript/email`: where the transcript goes.
 */
export type TranscriptEmailed = { to: string, };

/**
 * `POST /api/mail/inbound`: the conversation a reply by e-mail went to.
 */
export type InboundMailReceived = { conversationId: ConversationId, 
/**
 * The mail was received before (a retry): stored once.
 */
duplicate: boolean, };

export type AgentSummary = { disabled: boolean, online: boolean, connections: number, openConversations: number, capacity: number, status: AgentStatus, id: UserId, role: Role, username: string, displayName: string, };

export type AgentsResponse = { agents: Array<AgentSummary>, };

export type UpdateAgentRequest = { disabled?: boolean, capacity?: number, };

export type UpdateAgentResponse = { user: User, disabled: boolean, capacity: number, };

export type AvailableAgent = { online: boolean, status: AgentStatus, openConversations: number, capacity: number, id: UserId, role: Role, username: string, displayName: string, };

export type AvailableAgentsResponse = { agents: Array<AvailableAgent>, };

export type ConversationSummary = { id: ConversationId, customerId: UserId, agentId: UserId | null, status: ConversationStatus, createdAt: string, resolvedAt: string | null, rating: number | null, 
/**
 * Left through the offline form.
 */
offline: boolean, 
/**
 * How kefu ended it, when kefu did.
 */
endedAs: "abandoned" | "idle" | null, };

export type ConversationsResponse = { conversations: Array<ConversationSummary>, };

export type CannedReply = { id: string, shortcut: string, content: string, shared: boolean, };

export type CannedRepliesResponse = { replies: Array<CannedReply>, };

export type CannedReplyResponse = { reply: CannedReply, };

export type CreateCannedReplyRequest = { shortcut: string, content: string, shared?: boolean, };

export type UpdateCannedReplyRequest = { shortcut?: string, content?: string, };

/**
 * An attachment as clients see it; `url` needs the reader's token (header or `?token=`).
 */
export type Attachment = { id: string, name: string, mime: string, size: number, url: string, };

export type AttachmentResponse = { attachment: Attachment, };

export type DayCount = { date: string, conversations: number, };

export type Percentiles = { median: number, p90: number, };

export type Csat = { average: number, count: number, };

export type AgentReport = { agent: User, 
/**
 * Conversations created in the period and held by this agent (open or resolved by it).
 */
conversations: number, resolved: number, firstResponseSeconds: Percentiles | null, resolutionSeconds: Percentiles | null, csat: Csat | null, };

export type ReportsResponse = { from: string, to: string, days: Array<DayCount>, agents: Array<AgentReport>, 
/**
 * Conversations of the period that left the queue unanswered, their customers gone.
 */
abandoned: number, 
/**
 * The median wait before abandoning, in seconds; `None` without any.
 */
abandonWaitSeconds: number | null, };

export type NodeSummary = { id: string, startedAt: string, connections: number, onlineUsers: number, onlineAgents: number, 
/**
 * Open conversations of the agents connected to this node.
 */
openConversations: number, };

export type NodesResponse = { nodes: Array<NodeSummary>, };

export type Person = { id: UserId, displayName: string, username?: string, email?: string, };

export type FoundConversation = { id: ConversationId, customer: Person, agent: Person | null, status: ConversationStatus, messages: number, createdAt: string, resolvedAt: string | null, rating: number | null, 
/**
 * Left through the offline form.
 */
offline: boolean, 
/**
 * How kefu ended it, when kefu did.
 */
endedAs: "abandoned" | "idle" | null, };

export type FoundConversationsResponse = { conversations: Array<FoundConversation>, 
/**
 * The `before` of the next page; absent on the last one.
 */
nextBefore?: ConversationId, };

export type TranscriptConversation = { id: ConversationId, customerId: UserId, customer: Person, agentId: UserId | null, status: ConversationStatus, createdAt: string, resolvedAt: string | null, rating: number | null, ratingComment: string | null, };

export type ConversationEvent = { id: number, kind: ConversationEventKind, timestamp: string, actorId: UserId | null, agentId: UserId | null, score?: number, 
/**
 * The event in a sentence, as the text transcript says it.
 */
text: string, };

export type TranscriptResponse = { conversation: TranscriptConversation, messages: Array<Message>, events: Array<ConversationEvent>, };

/**
 * `GET /api/availability`.
 */
export type AvailabilityBody = { state: "open" | "busy" | "away" | "closed", agentsAvailable: number, queueLength: number, estimateSeconds: number | null, 
/**
 * Milliseconds since the Unix epoch.
 */
opensAt: number | null, timeZone: string, 
/**
 * Whether kefu sends e-mail (`KEFU_SMTP_URL` is set): without it, nothing is promised by
 * e-mail.
 */
mail: boolean, };

/**
 * `GET /api/me/contact`.
 */
export type ContactBody = { name: string | null, email: string | null, phone: string | null, };

/**
 * `POST /api/offline-messages`.
 */
export type OfflineMessageRequest = { name?: string, email?: string, phone?: string, content: string, clientMsgId?: string, };

export type OfflineMessageResponse = { conversationId: ConversationId, message: Message, place: number | null, };

/**
 * `GET` and `PUT /api/admin/hours`.
 */
export type HoursBody = { enabled: boolean, timeZone: string, weekly: Array<HoursInterval>, closedDays: Array<string>, };

export type HoursInterval = { day: "mon" | "tue" | "wed" | "thu" | "fri" | "sat" | "sun", open: string, close: string, };

export type LoginPayload = { userId: UserId, csId?: UserId, };

export type PrivateMessagePayload = { receiverId?: UserId, 
/**
 * Required unless `attachmentId` is given.
 */
content?: string, attachmentId?: AttachmentId, clientMsgId?: string, senderId?: UserId, };

export type ReadPayload = { peerId?: UserId, upToId: MessageId, };

export type TypingPayload = { receiverId?: UserId, typing: boolean, };

export type HistoryPayload = { peerId?: UserId, conversationId?: ConversationId, beforeId?: MessageId, afterSeq?: number, limit?: number, };

export type SetStatusPayload = { status: AgentStatus, };

export type ResolvePayload = { peerId?: UserId, };

export type TransferPayload = { peerId?: UserId, 
/**
 * Required, `null` for the queue.
 */
toAgentId: UserId | null, note?: string, };

export type NotePayload = { peerId?: UserId, content: string, };

export type NotesPayload = { peerId?: UserId, conversationId?: ConversationId, };

export type RatePayload = { conversationId: ConversationId, score: number, comment?: string, };

/**
 * A message as clients see it, live and in history.
 */
export type Message = { id: MessageId, seq: number, conversationId: ConversationId, senderId: UserId, receiverId: UserId | null, kind: MessageKind, content: string, timestamp: string, clientMsgId: string | null, attachment?: Attachment, };

export type Note = { id: string, conversationId: ConversationId, authorId: UserId, authorName: string, content: string, timestamp: string, };

export type Member = { id: UserId, role: Role, username: string, displayName: string, 
/**
 * Kept in snake_case: the reference design's name.
 */
message_count: number, online: boolean, conversationId: ConversationId, lastMessage: Message | null, 
/**
 * The conversation was left through the offline form (a customer, as its agent lists it).
 */
offline: boolean, 
/**
 * A customer's e-mail and phone, for its agent; never a staff member's.
 */
email: string | null, phone: string | null, };

export type LoginAck = { ok: true, csId: UserId | null, conversationId: ConversationId | null, queued: boolean, position: number | null, estimatedWaitSeconds: number | null, ended: boolean, 
/**
 * The agent named by `csId`, when one was: whether it is online, and until when (ms since
 * the Unix epoch) the conversation waits for it only when it is not.
 */
requestedAgent: RequestedAgentBody | null, };

export type RequestedAgentBody = { id: UserId, displayName: string, online: boolean, waitsUntil: number | null, };

export type AllMemberAck = { ok: true, users: Array<Member>, };

export type PrivateMessageAck = { ok: true, id: MessageId, seq: number, conversationId: ConversationId, createdAt: string, clientMsgId: string | null, duplicate: boolean, 
/**
 * Only on the customer's message that started its conversation: where it went.
 */
started?: StartedAck, };

/**
 * The conversation a customer's first message started: given to `csId`, or waiting in the
 * queue (`queued`, its place following as `queue_position`).
 */
export type StartedAck = { csId: UserId | null, queued: boolean, };

export type ReadAck = { ok: true, conversationId: ConversationId, upToId: MessageId, seq: number, };

export type HistoryAck = { ok: true, conversationId: ConversationId | null, messages: Array<Message>, hasMore: boolean, peerReadSeq: number, };

export type SetStatusAck = { ok: true, status: AgentStatus, };

export type ResolveAck = { ok: true, conversationId: ConversationId, };

export type QueueStatusAck = { ok: true, queued: boolean, conversationId: ConversationId | null, position: number | null, estimatedWaitSeconds: number | null, };

export type TransferAck = { ok: true, conversationId: ConversationId, agentId: UserId | null, };

export type NoteAck = { ok: true, note: Note, };

export type NotesAck = { ok: true, notes: Array<Note>, };

/**
 * `{ok: false, error: {code, message}}`
 */
export type AckError = { ok: false, error: ErrorBody, };

/**
 * The `error` event, for a failed event sent without an ack callback.
 */
export type EventError = { event: string, code: ErrorCode, message: string, };

export type MessagesRead = { readerId: UserId, upToId: MessageId, conversationId: ConversationId, seq: number, };

export type TypingEvent = { userId: UserId, typing: boolean, };

export type MemberPresence = { userId: UserId, online: boolean, };

export type ConversationAssigned = { conversationId: ConversationId, customerId: UserId, agentId: UserId, agent: User, };

export type ConversationQueued = { conversationId: ConversationId, };

export type QueuePosition = { conversationId: ConversationId, position: number, estimatedWaitSeconds: number, };

export type ConversationResolved = { conversationId: ConversationId, customerId: UserId, agentId: UserId, };

export type ConversationTransferred = { conversationId: ConversationId, customerId: UserId, fromAgentId: UserId, toAgentId: UserId | null, };

export type AgentStatusEvent = { agentId: UserId, status: AgentStatus, };

export type NewNote = { note: Note, };

/**
 * The server may have missed delivering something to this client (reason `"cluster"`: a node
 * lost its Redis link): fetch what a reconnect fetches, whatever the reason says.
 */
export type ResyncEvent = { reason: string, };

/** The most messages one `history` call returns. */
export const HISTORY_MAX_LIMIT = 100;

/** Content limit in bytes of UTF-8, unless the server sets another (`KEFU_MAX_MESSAGE_BYTES`). */
export const MAX_CONTENT_BYTES = 8192;

/** The most characters a rating's comment may have. */
export const MAX_RATING_COMMENT = 1000;

/** The fewest open conversations an agent may be given at once. */
export const MIN_CAPACITY = 1;

/** The most open conversations an agent may be given at once. */
export const MAX_CAPACITY = 10000;

/** The longest period a report covers, in days. */
export const MAX_REPORT_DAYS = 365;
