// The admin's conversation finder: one search at a time (a newer one wins over a slower older one),
// "More" pages through `nextBefore`, and a failed read keeps the rows shown and says why; a token that
// cannot administer any more signs the page out.
import { ref, shallowRef } from "vue";
import type { MessageKey } from "../../shared/i18n";
import type { AdminConversation, AdminConversationsResponse, Id } from "../../shared/protocol";
import { classifyLoadError, type SignOutReason } from "./adminErrors";
import { appendPage, conversationQuery, searchTerm, type StatusFilter } from "./conversations";

export type FetchConversations = (query: string) => Promise<AdminConversationsResponse>;

export function useConversationSearch(fetchPage: FetchConversations, onSignOut: (reason: SignOutReason) => void) {
  const items = shallowRef<AdminConversation[]>([]);
  const nextBefore = ref<Id | null>(null);
  /** The search the rows answer (its text as sent); null before the first answer. */
  const shown = ref<{ q: string; status: StatusFilter } | null>(null);
  /** When the rows shown were read (the first page; "More" adds older ones to the same reading). */
  const readAt = ref<Date | null>(null);
  const loading = ref(false);
  const loadingMore = ref(false);
  const error = ref<MessageKey | null>(null);
  let seq = 0;

  function failed(e: unknown) {
    const f = classifyLoadError(e);
    if ("signOut" in f) onSignOut(f.signOut);
    else error.value = f.message;
  }

  async function search(q: string, status: StatusFilter) {
    const mine = ++seq;
    loading.value = true;
    loadingMore.value = false;
    error.value = null;
    try {
      const page = await fetchPage(conversationQuery({ q, status }));
      if (mine !== seq) return;
      items.value = page.conversations;
      nextBefore.value = page.nextBefore ?? null;
      shown.value = { q: searchTerm(q), status };
      readAt.value = new Date();
    } catch (e) {
      if (mine === seq) failed(e);
    } finally {
      if (mine === seq) loading.value = false;
    }
  }

  async function more() {
    const s = shown.value;
    const before = nextBefore.value;
    if (!s || !before || loading.value || loadingMore.value) return;
    const mine = seq;
    loadingMore.value = true;
    error.value = null;
    try {
      const page = await fetchPage(conversationQuery({ ...s, before }));
      if (mine !== seq) return;
      items.value = appendPage(items.value, page.conversations);
      nextBefore.value = page.nextBefore ?? null;
    } catch (e) {
      if (mine === seq) failed(e);
    } finally {
      if (mine === seq) loadingMore.value = false;
    }
  }

  return { items, nextBefore, shown, readAt, loading, loadingMore, error, search, more };
}
