// Payload types of the kefu HTTP and Socket.IO contract. They mirror docs/protocol.md exactly:
// change them together.

/** Ids are strings of decimal digits, e.g. "17". */
export type Id = string;
/** RFC 3339, UTC, with milliseconds. */
export type Timestamp = string;

export type Role = "customer" | "agent" | "admin";

export type ErrorCode =
  | "unauthorized"
  | "forbidden"
  | "invalid_payload"
  | "too_large"
  | "rate_limited"
  | "not_found"
  | "conflict"
  | "unavailable"
  | "internal"
  /** An attachment of a type outside the server's allowlist (`POST /api/attachments`). */
  | "unsupported_type";

export interface ErrorBody {
  code: ErrorCode;
  message: string;
}

export interface User {
  id: Id;
  role: Role;
  username: string;
  displayName: string;
}

// ---- HTTP ----

export interface VisitorRequest {
  name?: string;
  email?: string;
}
export interface SessionResponse {
  token: string;
  user: User;
}
export interface LoginRequest {
  username: string;
  password: string;
}
export interface CreateAgentRequest {
  username: string;
  password: string;
  displayName?: string;
}
export interface CreateAgentResponse {
  user: User;
}
export interface MeResponse {
  user: User;
}

/** Whether an agent takes new customers. Presence (online/offline) is separate: connections. */
export type AgentStatus = "available" | "away";

/** An agent or admin as `GET /api/agents` lists it: the account, its presence and its load. */
export interface AgentSummary extends User {
  disabled: boolean;
  online: boolean;
  /** Open Socket.IO connections of this account (tabs, devices). */
  connections: number;
  openConversations: number;
  /** How many open conversations routing gives this agent at most (1..100, default 5). */
  capacity: number;
  status: AgentStatus;
}
export interface AgentsResponse {
  agents: AgentSummary[];
}
/** `PATCH /api/agents/{id}`: every field is optional. */
export interface UpdateAgentRequest {
  disabled?: boolean;
  /** 1..100. */
  capacity?: number;
}
export interface UpdateAgentResponse {
  user: User;
  disabled: boolean;
  capacity: number;
}
export const MIN_CAPACITY = 1;
export const MAX_CAPACITY = 100;

/** An agent a conversation can be transferred to (`GET /api/agents/available`, staff). */
export interface AvailableAgent {
  id: Id;
  username: string;
  displayName: string;
  status: AgentStatus;
  online: boolean;
  openConversations: number;
  capacity: number;
}
export interface AvailableAgentsResponse {
  agents: AvailableAgent[];
}

export type ConversationStatus = "open" | "resolved";
/** `GET /api/conversations`: a customer sees its own, newest first. */
export interface ConversationSummary {
  id: Id;
  customerId: Id;
  agentId: Id | null;
  status: ConversationStatus;
  createdAt: Timestamp;
  resolvedAt: Timestamp | null;
  /** The customer's score (1..5), null before it rated. */
  rating: number | null;
}
export interface ConversationsResponse {
  conversations: ConversationSummary[];
}

// ---- canned replies (staff) ----

export interface CannedReply {
  id: Id;
  /** "/" then 1–32 of a-z 0-9 _ -, e.g. "/refund". */
  shortcut: string;
  /** May hold the placeholders {{customer.name}} and {{agent.name}}, filled in by the console. */
  content: string;
  /** Shared by every agent (managed by admins); else the caller's own. */
  shared: boolean;
}
export interface CannedRepliesResponse {
  replies: CannedReply[];
}
export interface CreateCannedReplyRequest {
  shortcut: string;
  content: string;
  /** Needs an admin. */
  shared?: boolean;
}
export interface UpdateCannedReplyRequest {
  shortcut?: string;
  content?: string;
}
export interface CannedReplyResponse {
  reply: CannedReply;
}

// ---- attachments ----

export interface Attachment {
  id: Id;
  name: string;
  mime: string;
  /** Bytes. */
  size: number;
  /** `GET` it with `Authorization: Bearer` or `?token=` (for `<img src>`). */
  url: string;
}
export interface AttachmentResponse {
  attachment: Attachment;
}

// ---- reports and transcripts (admin) ----

export interface Percentiles {
  median: number;
  p90: number;
}
export interface AgentReport {
  agent: { id: Id; username: string; displayName: string };
  conversations: number;
  resolved: number;
  /** From a conversation's creation to the first staff message in it. */
  firstResponseSeconds: Percentiles | null;
  /** From creation to resolution. */
  resolutionSeconds: Percentiles | null;
  csat: { average: number; count: number } | null;
}
export interface ReportsResponse {
  from: Timestamp;
  to: Timestamp;
  /** One entry per day, e.g. `{date: "2026-11-26", conversations: 4}`. */
  days: Array<{ date: string; conversations: number }>;
  agents: AgentReport[];
}
export const MAX_REPORT_DAYS = 365;

/** A conversation as `GET /api/admin/conversations` finds it. */
export interface AdminConversation {
  id: Id;
  status: ConversationStatus;
  /** The conversation's last `seq`: how many messages it holds. */
  messages: number;
  /** 1..5, once the customer rated it. */
  rating: number | null;
  customer: { id: Id; displayName: string; username: string; email: string | null };
  /** null while it waits in the queue. */
  agent: { id: Id; displayName: string } | null;
  createdAt: Timestamp;
  resolvedAt: Timestamp | null;
}
export interface AdminConversationsResponse {
  conversations: AdminConversation[];
  /** The `before` of the next page; there when this page is full. */
  nextBefore?: Id | null;
}

/** What one kefu node holds (`GET /api/admin/nodes`). */
export interface NodeSummary {
  id: string;
  startedAt: Timestamp;
  connections: number;
  onlineUsers: number;
  onlineAgents: number;
  /** Open conversations of the agents connected to this node. */
  openConversations: number;
}
export interface NodesResponse {
  nodes: NodeSummary[];
}

// ---- Socket.IO ----

export interface AckError {
  ok: false;
  error: ErrorBody;
}
export type Ack<T> = ({ ok: true } & T) | AckError;

/**
 * `system`: written by the server (e.g. "Alice joined the conversation" after a transfer), shown as
 * an info line. `image` and `file` carry an `attachment`; their `content` is a caption.
 */
export type MessageKind = "text" | "system" | "image" | "file";

export interface Message {
  id: Id;
  seq: number;
  conversationId: Id;
  senderId: Id;
  /** null for a customer's message written while the conversation was queued. */
  receiverId: Id | null;
  kind: MessageKind;
  content: string;
  timestamp: Timestamp;
  clientMsgId: string | null;
  /** Set for `image` and `file` messages. */
  attachment?: Attachment | null;
}

/** A private note: agents only, never a customer. */
export interface Note {
  id: Id;
  conversationId: Id;
  authorId: Id;
  authorName: string;
  content: string;
  timestamp: Timestamp;
}

export interface Member {
  id: Id;
  role: Role;
  username: string;
  displayName: string;
  /** Messages this member sent me that I have not marked read. */
  message_count: number;
  online: boolean;
  conversationId: Id;
  /** The conversation's latest message from either side; null before the first one. */
  lastMessage: Message | null;
}

export interface LoginPayload {
  userId: Id;
  csId?: Id;
}
export interface LoginAck {
  csId: Id | null;
  conversationId: Id | null;
  queued: boolean;
  /** Customers: the place in the queue (1 for the head) while queued, else null. */
  position?: number | null;
  estimatedWaitSeconds?: number | null;
  /**
   * Customers: the last conversation was resolved and nothing was written since (`conversationId` is
   * that one). A customer without any conversation gets `conversationId` null: a login starts none.
   */
  ended?: boolean;
}

export interface AllMemberAck {
  users: Member[];
}

export interface PrivateMessagePayload {
  receiverId?: Id;
  /** Required without `attachmentId`; with it, an optional caption. */
  content?: string;
  /** An upload of `POST /api/attachments`: the message is an `image` or a `file`. */
  attachmentId?: Id;
  clientMsgId?: string;
  senderId?: Id;
}
export interface PrivateMessageAck {
  id: Id;
  seq: number;
  conversationId: Id;
  createdAt: Timestamp;
  clientMsgId: string | null;
  duplicate: boolean;
  /** Only on a customer's message that started its conversation: where that conversation went. */
  started?: StartedAck;
}
/** The agent a customer's first message went to (`csId`), or the queue (`queued`, `queue_position` follows). */
export interface StartedAck {
  csId: Id | null;
  queued: boolean;
}

export interface ReadPayload {
  peerId: Id;
  upToId: Id;
}
export interface ReadAck {
  conversationId: Id;
  upToId: Id;
  seq: number;
}

export interface TypingPayload {
  receiverId?: Id;
  typing: boolean;
}

export interface HistoryPayload {
  peerId?: Id;
  conversationId?: Id;
  beforeId?: Id;
  afterSeq?: number;
  limit?: number;
}
export interface HistoryAck {
  conversationId: Id | null;
  messages: Message[];
  hasMore: boolean;
  /** How far the other side has read (0 before its first `read`, and while queued). */
  peerReadSeq: number;
}

export interface SetStatusPayload {
  status: AgentStatus;
}
export interface SetStatusAck {
  status: AgentStatus;
}
export interface ResolvePayload {
  /** The customer. */
  peerId: Id;
}
export interface ResolveAck {
  conversationId: Id;
}
export interface QueueStatusAck {
  queued: boolean;
  conversationId: Id | null;
  position: number | null;
  estimatedWaitSeconds: number | null;
}
export interface TransferPayload {
  peerId: Id;
  /** null: back to the queue. */
  toAgentId: Id | null;
  note?: string;
}
export interface TransferAck {
  conversationId: Id;
  agentId: Id | null;
}
export interface NotePayload {
  peerId: Id;
  content: string;
}
export interface NoteAck {
  note: Note;
}
export interface NotesPayload {
  peerId?: Id;
  conversationId?: Id;
}
export interface NotesAck {
  /** Oldest first. */
  notes: Note[];
}
export interface RatePayload {
  conversationId: Id;
  /** 1..5. */
  score: number;
  /** Up to 1000 characters. */
  comment?: string;
}
export const MAX_RATING_COMMENT = 1000;

export interface MessagesRead {
  readerId: Id;
  upToId: Id;
  conversationId: Id;
  seq: number;
}
export interface TypingEvent {
  userId: Id;
  typing: boolean;
}
export interface MemberPresence {
  userId: Id;
  online: boolean;
}
export interface ConversationAssigned {
  conversationId: Id;
  customerId: Id;
  agentId: Id;
  agent: { id: Id; username: string; displayName: string };
}
export interface ConversationQueued {
  conversationId: Id;
}
export interface QueuePosition {
  conversationId: Id;
  /** 1 for the head of the queue. */
  position: number;
  estimatedWaitSeconds: number;
}
export interface ConversationResolved {
  conversationId: Id;
  customerId: Id;
  agentId: Id;
}
export interface ConversationTransferred {
  conversationId: Id;
  customerId: Id;
  fromAgentId: Id;
  /** null: back to the queue. */
  toAgentId: Id | null;
}
export interface AgentStatusEvent {
  agentId: Id;
  status: AgentStatus;
}
export interface NewNote {
  note: Note;
}
/**
 * The server may have missed delivering something to this client (reason `"cluster"`: a node lost its
 * Redis link). Fetch what a reconnect fetches; do not depend on the reason.
 */
export interface ResyncEvent {
  reason: string;
}
export interface EventError {
  event: string;
  code: ErrorCode;
  message: string;
}

/** Events the server emits. */
export interface ServerToClientEvents {
  new_private_message: (m: Message) => void;
  messages_read: (e: MessagesRead) => void;
  typing: (e: TypingEvent) => void;
  myUsersList: (members: Member[]) => void;
  Online_user: (ids: Id[]) => void;
  user_online: (id: Id) => void;
  user_offline: (id: Id) => void;
  update_member_list: (e: MemberPresence) => void;
  conversation_assigned: (e: ConversationAssigned) => void;
  conversation_queued: (e: ConversationQueued) => void;
  queue_position: (e: QueuePosition) => void;
  conversation_resolved: (e: ConversationResolved) => void;
  conversation_transferred: (e: ConversationTransferred) => void;
  agent_status: (e: AgentStatusEvent) => void;
  new_note: (e: NewNote) => void;
  resync: (e: ResyncEvent) => void;
  error: (e: EventError) => void;
}

/** Events the client emits, each with an ack. */
export interface ClientToServerEvents {
  login: (p: LoginPayload, ack: (a: Ack<LoginAck>) => void) => void;
  all_member: (ack: (a: Ack<AllMemberAck>) => void) => void;
  private_message: (p: PrivateMessagePayload, ack: (a: Ack<PrivateMessageAck>) => void) => void;
  read: (p: ReadPayload, ack: (a: Ack<ReadAck>) => void) => void;
  typing: (p: TypingPayload, ack: (a: Ack<object>) => void) => void;
  history: (p: HistoryPayload, ack: (a: Ack<HistoryAck>) => void) => void;
  heartbeat: (ack: (a: Ack<object>) => void) => void;
  set_status: (p: SetStatusPayload, ack: (a: Ack<SetStatusAck>) => void) => void;
  resolve: (p: ResolvePayload, ack: (a: Ack<ResolveAck>) => void) => void;
  queue_status: (p: object, ack: (a: Ack<QueueStatusAck>) => void) => void;
  transfer: (p: TransferPayload, ack: (a: Ack<TransferAck>) => void) => void;
  note: (p: NotePayload, ack: (a: Ack<NoteAck>) => void) => void;
  notes: (p: NotesPayload, ack: (a: Ack<NotesAck>) => void) => void;
  rate: (p: RatePayload, ack: (a: Ack<object>) => void) => void;
}

/** The most messages one `history` call returns. */
export const HISTORY_MAX_LIMIT = 100;
/** Content limit in bytes of UTF-8. */
export const MAX_CONTENT_BYTES = 8 * 1024;
