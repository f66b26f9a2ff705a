// The HTTP half of the protocol. Relative URLs: the UI is served from the same origin as the API.
import type {
  CreateAgentRequest,
  CreateAgentResponse,
  ErrorBody,
  ErrorCode,
  LoginRequest,
  MeResponse,
  SessionResponse,
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
    throw new ApiError(res.status, res.status >= 500 ? "unavailable" : "invalid_payload", res.statusText);
  }
  return data as T;
}

export const api = {
  createVisitor: (body: VisitorRequest = {}) => request<SessionResponse>("POST", "/api/visitors", body),
  login: (body: LoginRequest) => request<SessionResponse>("POST", "/api/login", body),
  me: (token: string) => request<MeResponse>("GET", "/api/me", undefined, token),
  createAgent: (token: string, body: CreateAgentRequest) =>
    request<CreateAgentResponse>("POST", "/api/agents", body, token),
};
