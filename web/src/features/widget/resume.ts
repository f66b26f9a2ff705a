// A resume link (`/chat?resume=<signed token>`, sent by e-mail) restores the visitor's session on
// this device. The token leaves the address bar at once: it must not stay in the history, a bookmark
// or a screenshot.

/** The link's token and the same address without it; null when there is none. */
export function takeResumeToken(href: string): { token: string; cleanUrl: string } | null {
  let url: URL;
  try {
    url = new URL(href);
  } catch {
    return null;
  }
  const token = url.searchParams.get("resume");
  if (token === null) return null;
  url.searchParams.delete("resume");
  const cleanUrl = `${url.pathname}${url.search}${url.hash}`;
  return token.trim() ? { token: token.trim(), cleanUrl } : { token: "", cleanUrl };
}

/** The agent a chat link names (`?agent=<id>`, `csId` of the login): digits only, else null. */
export function requestedAgentId(search: string): string | null {
  const id = new URLSearchParams(search).get("agent");
  return id && /^\d{1,20}$/.test(id) ? id : null;
}
