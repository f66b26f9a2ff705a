// The HTTP half of the protocol. Relative URLs: the UI is served from the same origin as the API.
import type {
  AdminConversationsResponse,
  AgentsResponse,
  AttachmentResponse,
  AvailableAgentsResponse,
  CannedRepliesResponse,
  CannedReplyResponse,
  ConversationsResponse,
  CreateCannedReplyRequest,
  CreateAgentRequest,
  CreateAgentResponse,
  ErrorBody,
  ErrorCode,
  Id,
  LoginRequest,
  MeResponse,
  NodesResponse,
  ReportsResponse,
  SessionResponse,
  UpdateAgentRequest,
  UpdateAgentResponse,
  UpdateCannedReplyRequest,
  VisitorRequest,
} from "./protocol";
import type {
  Availability,
  BusinessHours,
  ContactResponse,
  OfflineMessageRequest,
  OfflineMessageResponse,
  ResumeRequest,
  ResumeResponse,
  TranscriptEmailResponse,
} from "./offline";
import { TRANSCRIPT_TYPE, transcriptPath, type TranscriptFormat } from "./transcripts";

/** A failed request: `code` is the server's error code, or "network" when it could not be reached. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: ErrorCode | "network",
    message: string,
  ) {
    super(message);
    this.name = "ApiError";
  }
}

function isErrorBody(v: unknown): v is { error: ErrorBody } {
  return (
    typeof v === "object" &&
    v !== null &&
    typeof (v as { error?: unknown }).error === "object" &&
    typeof (v as { error: { code?: unknown } }).error.code === "string"
  );
}

/**
 * The code of an error answer without kefu's error body, i.e. not from kefu itself: a proxy or load
 * balancer in front of it answering 502/503/504 could not reach kefu.
 */
export function codeOfBareStatus(status: number): ErrorCode | "network" {
  if (status === 502 || status === 503 || status === 504) return "network";
  if (status >= 500) return "internal";
  if (status === 401) return "unauthorized";
  if (status === 403) return "forbidden";
  if (status === 404) return "not_found";
  return "invalid_payload";
}

async function send(
  method: string,
  path: string,
  body: unknown,
  token: string | undefined,
  accept: string,
  signal?: AbortSignal,
): Promise<Response> {
  const headers: Record<string, string> = { accept };
  let payload: BodyInit | undefined;
  if (body instanceof FormData) {
    // The browser sets the multipart content type with its boundary.
    payload = body;
  } else if (body !== undefined) {
    headers["content-type"] = "application/json";
    payload = JSON.stringify(body);
  }
  if (token) headers.authorization = `Bearer ${token}`;
  let res: Response;
  try {
    res = await fetch(path, { method, headers, body: payload, signal });
  } catch (e) {
    throw new ApiError(0, "network", e instanceof Error ? e.message : String(e));
  }
  if (!res.ok) {
    let data: unknown = null;
    try {
      data = await res.json();
    } catch {
      // An empty or non-JSON body (e.g. a proxy's error page).
    }
    if (isErrorBody(data)) throw new ApiError(res.status, data.error.code, data.error.message);
    throw new ApiError(res.status, codeOfBareStatus(res.status), res.statusText);
  }
  return res;
}

async function request<T>(method: string, path: string, body?: unknown, token?: string, signal?: AbortSignal): Promise<T> {
  const res = await send(method, path, body, token, "application/json", signal);
  let data: unknown = null;
  try {
    data = await res.json();
  } catch {
    // 204 No Content.
  }
  return data as T;
}

/** A file the server sends as a download (e.g. a transcript), with the name it suggests. */
export interface Download {
  blob: Blob;
  filename: string | null;
}

/** The file name of a `Content-Disposition` header, if it names one. */
export function filenameOf(disposition: string | null): string | null {
  if (!disposition) return null;
  const star = /filename\*\s*=\s*(?:UTF-8'')?([^;]+)/i.exec(disposition);
  if (star) {
    try {
      return decodeURIComponent(star[1]!.trim().replace(/^"|"$/g, ""));
    } catch {
      // Fall back to the plain name.
    }
  }
  const plain = /filename\s*=\s*("([^"]*)"|[^;]+)/i.exec(disposition);
  if (!plain) return null;
  return (plain[2] ?? plain[1]!).trim() || null;
}

const path = encodeURIComponent;

export const api = {
  createVisitor: (body: VisitorRequest = {}) => request<SessionResponse>("POST", "/api/visitors", body),
  /** A resume link's signed token (`?resume=` of an e-mail) for the visitor's session on this device. */
  resumeVisitor: (body: ResumeRequest) => request<ResumeResponse>("POST", "/api/visitors/resume", body),
  /** Whether anyone can answer now, the queue, and when the shop opens (no token). */
  availability: (signal?: AbortSignal) => request<Availability>("GET", "/api/availability", undefined, undefined, signal),
  /** What kefu knows of the customer: the offline form asks only for the rest. */
  contact: (token: string) => request<ContactResponse>("GET", "/api/me/contact", undefined, token),
  /** The offline form (留言): the contact details and the message, kept until someone answers. */
  sendOfflineMessage: (token: string, body: OfflineMessageRequest) =>
    request<OfflineMessageResponse>("POST", "/api/offline-messages", body, token),
  /** E-mails the customer the transcript of its own conversation. */
  emailTranscript: (token: string, conversationId: Id) =>
    request<TranscriptEmailResponse>("POST", `/api/conversations/${path(conversationId)}/transcript/email`, undefined, token),
  login: (body: LoginRequest) => request<SessionResponse>("POST", "/api/login", body),
  /**
   * Signs the account out everywhere: every token it was issued stops working and its connections
   * close, in every tab and on every device. `signal` gives up waiting (the server may still do it).
   */
  logout: (token: string, signal?: AbortSignal) => request<null>("POST", "/api/logout", undefined, token, signal),
  me: (token: string) => request<MeResponse>("GET", "/api/me", undefined, token),
  createAgent: (token: string, body: CreateAgentRequest) =>
    request<CreateAgentResponse>("POST", "/api/agents", body, token),
  listAgents: (token: string) => request<AgentsResponse>("GET", "/api/agents", undefined, token),
  setAgentDisabled: (token: string, id: Id, disabled: boolean) =>
    request<UpdateAgentResponse>("PATCH", `/api/agents/${path(id)}`, { disabled }, token),
  updateAgent: (token: string, id: Id, body: UpdateAgentRequest) =>
    request<UpdateAgentResponse>("PATCH", `/api/agents/${path(id)}`, body, token),
  /** Staff: the agents a conversation can be transferred to, with their status and load. */
  availableAgents: (token: string) => request<AvailableAgentsResponse>("GET", "/api/agents/available", undefined, token),
  nodes: (token: string) => request<NodesResponse>("GET", "/api/admin/nodes", undefined, token),
  conversations: (token: string) => request<ConversationsResponse>("GET", "/api/conversations", undefined, token),

  cannedReplies: (token: string) => request<CannedRepliesResponse>("GET", "/api/canned-replies", undefined, token),
  createCannedReply: (token: string, body: CreateCannedReplyRequest) =>
    request<CannedReplyResponse>("POST", "/api/canned-replies", body, token),
  updateCannedReply: (token: string, id: Id, body: UpdateCannedReplyRequest) =>
    request<CannedReplyResponse>("PATCH", `/api/canned-replies/${path(id)}`, body, token),
  deleteCannedReply: (token: string, id: Id) =>
    request<null>("DELETE", `/api/canned-replies/${path(id)}`, undefined, token),

  /** Uploads a file to the caller's conversation (an agent names the customer with `peerId`). */
  uploadAttachment: (token: string, file: File, peerId?: Id) => {
    const form = new FormData();
    if (peerId) form.append("peerId", peerId);
    form.append("file", file, file.name);
    return request<AttachmentResponse>("POST", "/api/attachments", form, token);
  },

  hours: (token: string) => request<BusinessHours>("GET", "/api/admin/hours", undefined, token),
  saveHours: (token: string, body: BusinessHours) => request<BusinessHours>("PUT", "/api/admin/hours", body, token),
  reports: (token: string, days: number) =>
    request<ReportsResponse>("GET", `/api/admin/reports?days=${days}`, undefined, token),
  /**
   * Finds conversations by customer (name, user name, e-mail, or an id), newest first (admins).
   * `query` is built by `conversationQuery` (features/admin/conversations.ts).
   */
  searchConversations: (token: string, query: string) =>
    request<AdminConversationsResponse>("GET", `/api/admin/conversations${query}`, undefined, token),
  /** A conversation's transcript, to save as a file (an admin, or the conversation's agent). */
  async transcript(token: string, conversationId: Id, format: TranscriptFormat): Promise<Download> {
    const res = await send("GET", transcriptPath(conversationId, format), undefined, token, TRANSCRIPT_TYPE[format]);
    return { blob: await res.blob(), filename: filenameOf(res.headers.get("content-disposition")) };
  },
};
