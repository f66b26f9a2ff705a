// Attachments as the chat shows them: URLs that carry the token (an <img src> cannot send a header),
// sizes people read, and the server's refusals in plain words.
import type { Attachment } from "./protocol";

/** The attachment's URL with `token=` added to its query, for `<img src>` and links. */
export function withToken(url: string, token: string): string {
  const hash = url.indexOf("#");
  const base = hash >= 0 ? url.slice(0, hash) : url;
  const fragment = hash >= 0 ? url.slice(hash) : "";
  const sep = base.includes("?") ? "&" : "?";
  return `${base}${sep}token=${encodeURIComponent(token)}${fragment}`;
}

/** 1023 B, 1.5 KB, 12 MB: one decimal below 10, none above. */
export function formatBytes(size: number): string {
  if (!Number.isFinite(size) || size < 1024) return `${Math.max(0, Math.round(size || 0))} B`;
  const units = ["KB", "MB", "GB"];
  let v = size / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v < 10 ? v.toFixed(1).replace(/\.0$/, "") : Math.round(v)} ${units[u]}`;
}

/** The caption to show under an attachment: none when it only repeats the file name. */
export function captionOf(content: string, attachment: Pick<Attachment, "name">): string {
  const c = content.trim();
  return c === "" || c === attachment.name ? "" : content;
}
