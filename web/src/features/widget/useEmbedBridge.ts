// The iframe's side of the embed protocol: learns from the shop page whether the panel is open, and
// tells it the unread count and whether this visitor has an open conversation (so that the loader
// loads the chat in the background on later page views only for such a visitor). Messages go to, and
// are accepted from, the parent window at the origin the loader gave (the shop page's), and nothing
// else.
import { onBeforeUnmount, ref, watch, type Ref } from "vue";
import { EMBED_SOURCE, isToFrame, type ToHost } from "../../shared/embed";

export function useEmbedBridge(hostOrigin: string | null, unread: Ref<number>, openConversation: Ref<boolean | null>) {
  /** Whether the shop page shows the panel. Closed until it says otherwise. */
  const open = ref(false);
  const parent = typeof window !== "undefined" && window.parent !== window ? window.parent : null;

  function post(msg: ToHost) {
    if (parent && hostOrigin) parent.postMessage(msg, hostOrigin);
  }

  function onMessage(e: MessageEvent) {
    if (!parent || e.source !== parent || e.origin !== hostOrigin || !isToFrame(e.data)) return;
    open.value = e.data.open;
  }

  window.addEventListener("message", onMessage);
  onBeforeUnmount(() => window.removeEventListener("message", onMessage));
  watch(unread, (count) => post({ source: EMBED_SOURCE, type: "unread", count }), { immediate: true });
  // Said once known (null: not yet), and again whenever it changes.
  watch(
    openConversation,
    (open) => {
      if (open !== null) post({ source: EMBED_SOURCE, type: "conversation", open });
    },
    { immediate: true },
  );

  return {
    open,
    close: () => post({ source: EMBED_SOURCE, type: "close" }),
  };
}
