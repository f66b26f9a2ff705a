// Pure logic of the agent's customer list: unread counts, presence, previews, ordering.
import type { Id, Member, Message, Timestamp } from "./protocol";

export interface Preview {
  content: string;
  timestamp: Timestamp;
  fromMe: boolean;
}

export interface MemberEntry {
  id: Id;
  displayName: string;
  username: string;
  conversationId: Id;
  online: boolean;
  unread: number;
  last: Preview | null;
  /** Left through the offline form while nobody was available. */
  offline: boolean;
  /** The customer's contact, when the list carries it. */
  email: string | null;
  phone: string | null;
}

const text = (v: unknown) => (typeof v === "string" && v.trim() ? v.trim() : null);

/** `b` when it is at least as recent as `a` (or `a` is null), else `a`. */
function newer(a: Preview | null, b: Preview | null): Preview | null {
  if (!a) return b;
  if (!b) return a;
  return Date.parse(b.timestamp) >= Date.parse(a.timestamp) ? b : a;
}

/**
 * One member of the server's list. Its preview is the conversation's `lastMessage`, unless
 * `previous` (the same conversation) knows a newer one: a live message or my own send that came after
 * the server answered.
 */
export function entryFromMember(m: Member, me: Id, previous?: MemberEntry): MemberEntry {
  const last = m.lastMessage ? previewOf(m.lastMessage, me) : null;
  return {
    id: m.id,
    displayName: m.displayName,
    username: m.username,
    conversationId: m.conversationId,
    online: m.online,
    unread: m.message_count,
    last: newer(previous?.last ?? null, last),
    offline: m.offline === true,
    email: text(m.email),
    phone: text(m.phone),
  };
}

/**
 * The server's fresh list is the truth for who is in it, unread counts, presence and each
 * conversation's latest message; a newer preview we already know is kept, unless that conversation
 * changed.
 */
export function mergeMemberList(previous: readonly MemberEntry[], fresh: readonly Member[], me: Id): MemberEntry[] {
  const byId = new Map(previous.map((e) => [e.id, e]));
  return fresh.map((m) => {
    const old = byId.get(m.id);
    return entryFromMember(m, me, old && old.conversationId === m.conversationId ? old : undefined);
  });
}

/** Newest activity first; conversations with no message yet after them, by name. */
export function sortByActivity(list: readonly MemberEntry[]): MemberEntry[] {
  return list.slice().sort((a, b) => {
    const ta = a.last ? Date.parse(a.last.timestamp) : -Infinity;
    const tb = b.last ? Date.parse(b.last.timestamp) : -Infinity;
    if (ta !== tb) return tb - ta;
    return a.displayName.localeCompare(b.displayName) || a.id.localeCompare(b.id);
  });
}

export interface IncomingResult {
  list: MemberEntry[];
  /** false when the message is from or to someone not in the list: refresh it from the server. */
  known: boolean;
}

/**
 * A live message of one of my conversations. `reading` tells whether the agent is looking at that
 * conversation right now (then it does not count as unread: it is about to be marked read).
 */
export function applyMessage(list: readonly MemberEntry[], m: Message, me: Id, reading: boolean): IncomingResult {
  const fromMe = m.senderId === me;
  const peer = fromMe ? m.receiverId : m.senderId;
  // A system message ("Alice joined the conversation") is nobody's words.
  const mine = fromMe && m.kind !== "system";
  let known = false;
  const out = list.map((e) => {
    if (e.id !== peer) return e;
    known = true;
    const newer = !e.last || Date.parse(m.timestamp) >= Date.parse(e.last.timestamp);
    return {
      ...e,
      unread: !fromMe && !reading ? e.unread + 1 : e.unread,
      last: newer ? { content: m.content, timestamp: m.timestamp, fromMe: mine } : e.last,
    };
  });
  return { list: out, known };
}

export function previewOf(m: Pick<Message, "content" | "timestamp" | "senderId"> & { kind?: Message["kind"] }, me: Id): Preview {
  return { content: m.content, timestamp: m.timestamp, fromMe: m.senderId === me && m.kind !== "system" };
}

/** The latest message of a conversation, when a history page (or my own send) tells us about it. */
export function applyPreview(list: readonly MemberEntry[], peer: Id, p: Preview | undefined): MemberEntry[] {
  if (!p) return list.slice();
  return list.map((e) => (e.id === peer && newer(e.last, p) === p ? { ...e, last: p } : e));
}

export function setUnread(list: readonly MemberEntry[], peer: Id, unread: number): MemberEntry[] {
  return list.map((e) => (e.id === peer && e.unread !== unread ? { ...e, unread } : e));
}

export function setOnline(list: readonly MemberEntry[], userId: Id, online: boolean): MemberEntry[] {
  return list.map((e) => (e.id === userId && e.online !== online ? { ...e, online } : e));
}

/** `Online_user`: the ids listed are online, the others are not. */
export function setOnlineSet(list: readonly MemberEntry[], online: readonly Id[]): MemberEntry[] {
  const set = new Set(online);
  return list.map((e) => (e.online === set.has(e.id) ? e : { ...e, online: set.has(e.id) }));
}

export function totalUnread(list: readonly MemberEntry[]): number {
  return list.reduce((n, e) => n + e.unread, 0);
}

/** A conversation that left my list (resolved, or transferred to someone else). */
export function removeMember(list: readonly MemberEntry[], peerId: Id): MemberEntry[] {
  return list.filter((e) => e.id !== peerId);
}

/** The customer of one of my conversations, by its id. */
export function peerOfConversation(list: readonly MemberEntry[], conversationId: Id): Id | undefined {
  return list.find((e) => e.conversationId === conversationId)?.id;
}
