// The admin page's data: the accounts and the nodes, refreshed every few seconds while the page is
// visible and on demand, and enabling/disabling accounts. Failed reads keep the last data on screen
// and say why; a token that cannot administer any more signs the page out.
import { reactive, ref, shallowRef } from "vue";
import { api } from "../../shared/api";
import type { MessageKey } from "../../shared/i18n";
import type { AgentSummary, Id, NodeSummary, SessionResponse, User } from "../../shared/protocol";
import { classifyLoadError, classifyToggleError, type AdminFailure, type SignOutReason } from "./adminErrors";
import { withCapacity, withCreated, withDisabled } from "./agents";
import { createPoller } from "./poller";

export const REFRESH_SECONDS = 5;

/** What the last enable/disable did, for the line above the list. */
export interface ToggleOutcome {
  kind: "success" | "error";
  key: MessageKey;
  name: string;
  reason?: MessageKey;
  /** The new capacity. */
  n?: number;
}

export interface Section<T> {
  data: T;
  loaded: boolean;
  /** Why the last refresh failed; the data shown is then from `updatedAt`. */
  error: MessageKey | null;
  updatedAt: Date | null;
}

export function useAdmin(session: SessionResponse, onSignOut: (reason: SignOutReason) => void) {
  const token = session.token;
  const agents = shallowRef<Section<AgentSummary[]>>({ data: [], loaded: false, error: null, updatedAt: null });
  const nodes = shallowRef<Section<NodeSummary[]>>({ data: [], loaded: false, error: null, updatedAt: null });
  /** A refresh the admin asked for is under way (the automatic ones stay quiet). */
  const refreshing = ref(false);
  const pending = reactive<Record<Id, "disabling" | "enabling" | "capacity">>({});
  const outcome = ref<ToggleOutcome | null>(null);

  let ended = false;
  // Bumped before and after every change made from this page: a list fetched while a change was under
  // way may predate it, so it is dropped (a fresh one is already queued).
  let changes = 0;

  function failure(f: AdminFailure): MessageKey | null {
    if ("signOut" in f) {
      if (!ended) {
        end();
        onSignOut(f.signOut);
      }
      return null;
    }
    return f.message;
  }

  async function load() {
    const seen = changes;
    const [a, n] = await Promise.allSettled([api.listAgents(token), api.nodes(token)]);
    if (ended) return;
    const now = new Date();
    if (a.status === "fulfilled") {
      if (seen === changes) agents.value = { data: a.value.agents, loaded: true, error: null, updatedAt: now };
    } else {
      const error = failure(classifyLoadError(a.reason));
      if (ended) return;
      agents.value = { ...agents.value, error };
    }
    if (n.status === "fulfilled") {
      nodes.value = { data: n.value.nodes, loaded: true, error: null, updatedAt: now };
    } else {
      const error = failure(classifyLoadError(n.reason));
      if (ended) return;
      nodes.value = { ...nodes.value, error };
    }
  }

  const poller = createPoller(load, REFRESH_SECONDS * 1000);

  async function refresh() {
    refreshing.value = true;
    try {
      await poller.refresh();
    } finally {
      refreshing.value = false;
    }
  }

  async function setDisabled(agent: AgentSummary, disabled: boolean) {
    if (pending[agent.id] || ended) return;
    pending[agent.id] = disabled ? "disabling" : "enabling";
    outcome.value = null;
    changes++;
    try {
      await api.setAgentDisabled(token, agent.id, disabled);
      agents.value = { ...agents.value, data: withDisabled(agents.value.data, agent.id, disabled) };
      outcome.value = { kind: "success", key: disabled ? "admin.nowDisabled" : "admin.nowEnabled", name: agent.displayName };
    } catch (e) {
      const reason = failure(classifyToggleError(e));
      if (reason) outcome.value = { kind: "error", key: "admin.toggleFailed", name: agent.displayName, reason };
    } finally {
      delete pending[agent.id];
      changes++;
      if (!ended) void poller.refresh();
    }
  }

  async function setCapacity(agent: AgentSummary, capacity: number) {
    if (pending[agent.id] || ended) return;
    pending[agent.id] = "capacity";
    outcome.value = null;
    changes++;
    try {
      const res = await api.updateAgent(token, agent.id, { capacity });
      const saved = typeof res?.capacity === "number" ? res.capacity : capacity;
      agents.value = { ...agents.value, data: withCapacity(agents.value.data, agent.id, saved) };
      outcome.value = {
        kind: "success",
        key: saved === 1 ? "admin.capacitySavedOne" : "admin.capacitySaved",
        name: agent.displayName,
        n: saved,
      };
    } catch (e) {
      const reason = failure(classifyToggleError(e));
      if (reason) outcome.value = { kind: "error", key: "admin.capacityFailed", name: agent.displayName, reason };
    } finally {
      delete pending[agent.id];
      changes++;
      if (!ended) void poller.refresh();
    }
  }

  /** An account made with the create form: listed at once, then as the server sees it. */
  function created(user: User) {
    changes++;
    agents.value = { ...agents.value, data: withCreated(agents.value.data, user) };
    void poller.refresh();
  }

  function end() {
    ended = true;
    poller.pause();
  }

  return {
    agents,
    nodes,
    refreshing,
    pending,
    outcome,
    refresh,
    setDisabled,
    setCapacity,
    created,
    /** Polls while the page is visible; a page coming back refreshes at once. */
    setVisible(visible: boolean) {
      if (ended) return;
      if (visible) poller.resume();
      else poller.pause();
    },
    dismissOutcome: () => (outcome.value = null),
    end,
  };
}
