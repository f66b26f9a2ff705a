// The HTTP half of the protocol. Relative URLs: the UI is served from the same origin as the API.
import type {
  AgentsResponse,
  CreateAgentRequest,
  CreateAgentResponse,
  ErrorBody,
  ErrorCode,
  Id,
  LoginRequest,
  MeResponse,
  NodesResponse,
  SessionResponse,
  UpdateAgentResponse,
  VisitorRequest,
} from "./protocol";

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

async function request<T>(method: string, path: string, body?: unknown, token?: string): Promise<T> {
  const headers: Record<string, string> = { accept: "application/json" };
  if (body !== undefined) headers["content-type"] = "application/json";
  if (token) headers.authorization = `Bearer ${token}`;
  let res: Response;
  try {
    res = await fetch(path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new ApiError(0, "network", e instanceof Error ? e.message : String(e));
  }
  let data: unknown = null;
  try {
    data = await res.json();
  } catch {
    // An empty or non-JSON body (e.g. a proxy's error page).
  }
  if (!res.ok) {
    if (isErrorBody(data)) throw new ApiError(res.status, data.error.code, data.error.message);
    throw new ApiError(res.status, codeOfBareStatus(res.status), res.statusText);
  }
  return data as T;
}

export const api = {
  createVisitor: (body: VisitorRequest = {}) => request<SessionResponse>("POST", "/api/visitors", body),
  login: (body: LoginRequest) => request<SessionResponse>("POST", "/api/login", body),
  me: (token: string) => request<MeResponse>("GET", "/api/me", undefined, token),
  createAgent: (token: string, body: CreateAgentRequest) =>
    request<CreateAgentResponse>("POST", "/api/agents", body, token),
  listAgents: (token: string) => request<AgentsResponse>("GET", "/api/agents", undefined, token),
  setAgentDisabled: (token: string, id: Id, disabled: boolean) =>
    request<UpdateAgentResponse>("PATCH", `/api/agents/${encodeURIComponent(id)}`, { disabled }, token),
  nodes: (token: string) => request<NodesResponse>("GET", "/api/admin/nodes", undefined, token),
};
