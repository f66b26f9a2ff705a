// A modal on the native <dialog>: shown while `open` is true (focus moves inside and stays there,
// and returns where it was when it closes); Escape and a click on the backdrop ask to close.
import { nextTick, ref, watch, type Ref } from "vue";

export function useNativeDialog(
  open: () => boolean,
  onDismiss: () => void,
  focusFirst: (dialog: HTMLDialogElement) => HTMLElement | null | undefined,
): { dialog: Ref<HTMLDialogElement | null>; onCancel: (e: Event) => void; onBackdrop: (e: MouseEvent) => void } {
  const dialog = ref<HTMLDialogElement | null>(null);
  watch(
    open,
    async (isOpen) => {
      await nextTick();
      const d = dialog.value;
      if (!d) return;
      if (isOpen && !d.open) {
        d.showModal();
        focusFirst(d)?.focus();
      } else if (!isOpen && d.open) {
        d.close();
      }
    },
    { immediate: true },
  );
  return {
    dialog,
    onCancel(e: Event) {
      e.preventDefault();
      onDismiss();
    },
    onBackdrop(e: MouseEvent) {
      if (e.target === dialog.value) onDismiss();
    },
  };
}
