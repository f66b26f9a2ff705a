// `GET /api/availability` while the chat is open: at once, every 30 s, and whenever asked (a
// `queue_position` came). Never two requests at once; a failed one keeps what was known.
import { getCurrentScope, onScopeDispose, ref, watch, type ComputedRef, type Ref } from "vue";
import { api } from "../../shared/api";
import type { Availability } from "../../shared/offline";
import { AVAILABILITY_EVERY_MS } from "./availability";

export function useAvailability(active: Ref<boolean> | ComputedRef<boolean>, everyMs = AVAILABILITY_EVERY_MS) {
  const availability = ref<Availability | null>(null);
  /** When it was last read (ms), for "today"/"tomorrow". */
  const readAt = ref(Date.now());
  let timer: ReturnType<typeof setTimeout> | undefined;
  let inFlight: Promise<void> | null = null;
  let again = false;

  async function read() {
    try {
      const a = await api.availability();
      if (a && typeof a === "object" && typeof a.state === "string") {
        availability.value = a;
        readAt.value = Date.now();
      }
    } catch {
      // The server could not say (or is older): keep what was known; the chat works as it always did.
    }
  }

  /** Reads now (or right after the read in progress), then every `everyMs` while active. */
  function refresh(): Promise<void> {
    if (inFlight) {
      again = true;
      return inFlight;
    }
    clearTimeout(timer);
    inFlight = read().finally(() => {
      inFlight = null;
      if (again) {
        again = false;
        void refresh();
      } else schedule();
    });
    return inFlight;
  }

  function schedule() {
    clearTimeout(timer);
    if (active.value) timer = setTimeout(() => void refresh(), everyMs);
  }

  watch(
    active,
    (on) => {
      if (on) void refresh();
      else clearTimeout(timer);
    },
    { immediate: true },
  );
  if (getCurrentScope()) onScopeDispose(() => clearTimeout(timer));

  return { availability, readAt, refresh, stop: () => clearTimeout(timer) };
}
