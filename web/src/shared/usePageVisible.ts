import { onBeforeUnmount, ref } from "vue";

/** Whether the tab is visible (not minimized, not in the background). */
export function usePageVisible() {
  const visible = ref(document.visibilityState === "visible");
  const update = () => (visible.value = document.visibilityState === "visible");
  document.addEventListener("visibilitychange", update);
  onBeforeUnmount(() => document.removeEventListener("visibilitychange", update));
  return visible;
}
