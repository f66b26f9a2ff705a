// Pure logic of exporting a conversation's transcript: where it is, what the file is called. The
// route needs the bearer token, so the file is fetched and saved from a blob (see download.ts), never
// linked.
import type { Id } from "./protocol";

/** `text`: the text/plain transcript a person reads; `json`: the structured one. */
export type TranscriptFormat = "text" | "json";
export const TRANSCRIPT_FORMATS: readonly TranscriptFormat[] = ["text", "json"];

const EXTENSION: Record<TranscriptFormat, string> = { text: "txt", json: "json" };
export const TRANSCRIPT_TYPE: Record<TranscriptFormat, string> = { text: "text/plain", json: "application/json" };

/** The route an admin, or the conversation's agent, exports a conversation from. */
export function transcriptPath(conversationId: Id, format: TranscriptFormat): string {
  const base = `/api/conversations/${encodeURIComponent(conversationId)}/transcript`;
  return format === "text" ? `${base}?format=text` : base;
}

/**
 * The name of the saved file: the server's suggestion when it is a plain name of the right kind,
 * else `conversation-<id>.txt` (or `.json`).
 */
export function transcriptFilename(conversationId: Id, format: TranscriptFormat, suggested: string | null = null): string {
  const ext = EXTENSION[format];
  const s = suggested?.trim() ?? "";
  if (s && /^[\w.-]+$/.test(s) && !s.startsWith(".") && s.toLowerCase().endsWith(`.${ext}`)) return s;
  return `conversation-${conversationId.replace(/[^\w-]/g, "_")}.${ext}`;
}
