// Attention for a new message while the console tab is hidden: a short chime made with WebAudio (no
// audio file to ship) and a desktop notification.
import { ref } from "vue";

let audio: AudioContext | null = null;

/** Browsers only let a page start audio after a user gesture: call this from one. */
export function unlockAudio(): void {
  try {
    audio ??= new AudioContext();
    if (audio.state === "suspended") void audio.resume();
  } catch {
    audio = null;
  }
}

/** Two soft sine notes, about a third of a second. */
export function playChime(): void {
  if (!audio || audio.state !== "running") return;
  const start = audio.currentTime + 0.01;
  const notes: Array<[number, number]> = [
    [659.25, 0],
    [880, 0.13],
  ];
  for (const [freq, offset] of notes) {
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.type = "sine";
    osc.frequency.value = freq;
    const t0 = start + offset;
    gain.gain.setValueAtTime(0.0001, t0);
    gain.gain.exponentialRampToValueAtTime(0.12, t0 + 0.015);
    gain.gain.exponentialRampToValueAtTime(0.0001, t0 + 0.22);
    osc.connect(gain).connect(audio.destination);
    osc.start(t0);
    osc.stop(t0 + 0.25);
  }
}

export type Permission = NotificationPermission | "unsupported";

export function notificationPermission(): Permission {
  return typeof Notification === "undefined" ? "unsupported" : Notification.permission;
}

/** The permission as the UI shows it; updated whenever we ask. */
export const permission = ref<Permission>(notificationPermission());

const ASKED_KEY = "kefu.notifications.asked";

/**
 * Asks for permission, from a user gesture. With `onlyOnce`, asks only if this browser was never
 * asked by us before (so signing in again does not prompt again).
 */
export async function requestNotifications(onlyOnce = false): Promise<Permission> {
  permission.value = await ask(onlyOnce);
  return permission.value;
}

async function ask(onlyOnce: boolean): Promise<Permission> {
  if (notificationPermission() !== "default") return notificationPermission();
  try {
    if (onlyOnce && window.localStorage.getItem(ASKED_KEY)) return "default";
    window.localStorage.setItem(ASKED_KEY, "1");
  } catch {
    // Ask anyway.
  }
  try {
    return await Notification.requestPermission();
  } catch {
    return notificationPermission();
  }
}

export function showNotification(title: string, body: string, tag: string, onClick: () => void): void {
  if (notificationPermission() !== "granted") return;
  try {
    const n = new Notification(title, { body: body.length > 140 ? `${body.slice(0, 139)}…` : body, tag });
    n.onclick = () => {
      window.focus();
      onClick();
      n.close();
    };
  } catch {
    // Some platforms only allow notifications from a service worker; the chime still plays.
  }
}
