// The postMessage protocol between the loader (widget.js, on the shop's page) and the chat iframe.
// Both sides check the peer window and its origin before they trust a message.

export const EMBED_SOURCE = "kefu";

/**
 * iframe -> shop page. `conversation` says whether this visitor has an open conversation (one an
 * agent may answer while the chat is closed): the loader remembers it to load the chat in the
 * background on the shop's next page views, for the unread badge, and only then.
 */
export type ToHost =
  | { source: typeof EMBED_SOURCE; type: "unread"; count: number }
  | { source: typeof EMBED_SOURCE; type: "close" }
  | { source: typeof EMBED_SOURCE; type: "conversation"; open: boolean };

/** shop page -> iframe */
export type ToFrame = { source: typeof EMBED_SOURCE; type: "visibility"; open: boolean };

export function isToHost(v: unknown): v is ToHost {
  if (typeof v !== "object" || v === null) return false;
  const m = v as Record<string, unknown>;
  if (m.source !== EMBED_SOURCE) return false;
  if (m.type === "close") return true;
  if (m.type === "conversation") return typeof m.open === "boolean";
  return m.type === "unread" && typeof m.count === "number" && Number.isInteger(m.count) && m.count >= 0;
}

export function isToFrame(v: unknown): v is ToFrame {
  if (typeof v !== "object" || v === null) return false;
  const m = v as Record<string, unknown>;
  return m.source === EMBED_SOURCE && m.type === "visibility" && typeof m.open === "boolean";
}

/** A CSS colour we accept from a shop's markup: #rgb, #rrggbb (anything else could inject CSS). */
export function safeColor(v: string | null | undefined): string | null {
  if (!v) return null;
  const s = v.trim();
  return /^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$/.test(s) ? s.toLowerCase() : null;
}

/** An http(s) origin, or null: the only values used as a postMessage target. */
export function safeOrigin(v: string | null | undefined): string | null {
  if (!v) return null;
  try {
    const u = new URL(v);
    if (u.protocol !== "http:" && u.protocol !== "https:") return null;
    return u.origin === v ? v : null;
  } catch {
    return null;
  }
}

export interface EmbedParams {
  embedded: boolean;
  /** The shop page's origin, given by the loader; messages go there and only there. */
  hostOrigin: string | null;
  title: string | null;
  color: string | null;
}

export function parseEmbedParams(search: string): EmbedParams {
  const q = new URLSearchParams(search);
  const title = q.get("title")?.trim().slice(0, 80) || null;
  return {
    embedded: q.get("embed") === "1",
    hostOrigin: safeOrigin(q.get("origin")),
    title,
    color: safeColor(q.get("color")),
  };
}

/** Readable text on the accent colour: dark text on light colours. */
export function contrastText(hex: string): string {
  const h = hex.length === 4 ? hex.replace(/^#(.)(.)(.)$/, "#$1$1$2$2$3$3") : hex;
  const n = parseInt(h.slice(1), 16);
  const [r, g, b] = [(n >> 16) & 255, (n >> 8) & 255, n & 255];
  const lum = (0.299 * r + 0.587 * g + 0.114 * b) / 255;
  return lum > 0.62 ? "#1b2430" : "#ffffff";
}
