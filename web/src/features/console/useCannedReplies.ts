// The agent's canned replies: the shared ones and their own, from the REST routes, kept fresh after
// every change made here.
import { ref, shallowRef } from "vue";
import { api } from "../../shared/api";
import { failureOf, type Failure } from "../../shared/errors";
import type { CannedReply, Id, SessionResponse } from "../../shared/protocol";

export function useCannedReplies(session: SessionResponse) {
  const replies = shallowRef<CannedReply[]>([]);
  const loaded = ref(false);
  const loadError = ref<Failure | null>(null);
  let loading: Promise<void> | null = null;

  function load(): Promise<void> {
    if (loading) return loading;
    loading = api
      .cannedReplies(session.token)
      .then((r) => {
        replies.value = r.replies;
        loaded.value = true;
        loadError.value = null;
      })
      .catch((e: unknown) => {
        loadError.value = failureOf(e);
      })
      .finally(() => {
        loading = null;
      });
    return loading;
  }

  /** Creates a reply; resolves with the failure, or null when it was saved. */
  async function create(shortcut: string, content: string, shared: boolean): Promise<Failure | null> {
    try {
      const { reply } = await api.createCannedReply(session.token, { shortcut, content, ...(shared ? { shared: true } : {}) });
      replies.value = [...replies.value.filter((r) => r.id !== reply.id), reply];
      return null;
    } catch (e) {
      return failureOf(e);
    }
  }

  async function update(id: Id, shortcut: string, content: string): Promise<Failure | null> {
    try {
      const { reply } = await api.updateCannedReply(session.token, id, { shortcut, content });
      replies.value = replies.value.map((r) => (r.id === id ? reply : r));
      return null;
    } catch (e) {
      return failureOf(e);
    }
  }

  async function remove(id: Id): Promise<Failure | null> {
    try {
      await api.deleteCannedReply(session.token, id);
      replies.value = replies.value.filter((r) => r.id !== id);
      return null;
    } catch (e) {
      const f = failureOf(e);
      if (f.code === "not_found") {
        replies.value = replies.value.filter((r) => r.id !== id);
        return null;
      }
      return f;
    }
  }

  return { replies, loaded, loadError, load, create, update, remove };
}

export type CannedStore = ReturnType<typeof useCannedReplies>;
