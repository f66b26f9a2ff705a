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
  | "internal";

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

/** An agent or admin as `GET /api/agents` lists it: the account, its presence and its load. */
export interface AgentSummary extends User {
  disabled: boolean;
  online: boolean;
  /** Open Socket.IO connections of this account (tabs, devices). */
  connections: number;
  openConversations: number;
}
export interface AgentsResponse {
  agents: AgentSummary[];
}
export interface UpdateAgentRequest {
  disabled: boolean;
}
export interface UpdateAgentResponse {
  user: User;
  disabled: boolean;
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

export interface Message {
  id: Id;
  seq: number;
  conversationId: Id;
  senderId: Id;
  /** null for a customer's message written while the conversation was queued. */
  receiverId: Id | null;
  kind: "text";
  content: string;
  timestamp: Timestamp;
  clientMsgId: string | null;
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
}

export interface AllMemberAck {
  users: Member[];
}

export interface PrivateMessagePayload {
  receiverId?: Id;
  content: string;
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
}

/** The most messages one `history` call returns. */
export const HISTORY_MAX_LIMIT = 100;
/** Content limit in bytes of UTF-8. */
export const MAX_CONTENT_BYTES = 8 * 1024;
