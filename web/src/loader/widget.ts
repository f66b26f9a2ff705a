// widget.js: what a shop embeds with
//   <script src="https://<kefu-host>/widget.js" data-title="…" data-color="#…" async></script>
// It adds one element to the page, a floating bubble inside a shadow root, and opens the chat
// in an iframe from the kefu host: the shop's CSS cannot reach the chat, and ours cannot reach the
// shop. The iframe reports its unread count with postMessage; both sides check window and origin.
// The iframe is made when the visitor first opens the bubble, or in the background when the page is
// idle for a visitor with an open conversation (its unread badge): see frameLoading.ts.
import { EMBED_SOURCE, isToHost, safeColor, type ToFrame } from "../shared/embed";
import { frameLoadFor, pageStorage, rememberConversation, whenIdle } from "./frameLoading";

declare global {
  interface Window {
    __kefuWidget?: boolean;
  }
}

const DEFAULT_COLOR = "#2f6bd8";
const Z_TOP = "2147483000";

function findScript(): HTMLScriptElement | null {
  const current = document.currentScript;
  if (current instanceof HTMLScriptElement && current.src) return current;
  const all = document.querySelectorAll<HTMLScriptElement>('script[src*="widget.js"]');
  return all.length ? all[all.length - 1]! : null;
}

/** Inline !important declarations beat any stylesheet rule of the shop, even `* {… !important}`. */
function pin(el: HTMLElement, styles: Record<string, string>) {
  el.style.setProperty("all", "initial", "important");
  for (const [k, v] of Object.entries(styles)) el.style.setProperty(k, v, "important");
}

const CSS = `
.bubble {
  position: fixed; right: 20px; bottom: 20px; width: 58px; height: 58px;
  display: flex; align-items: center; justify-content: center;
  margin: 0; padding: 0; border: 0; border-radius: 50%;
  background: var(--kefu-accent); color: var(--kefu-contrast);
  box-shadow: 0 6px 20px rgba(16, 24, 40, 0.22), 0 2px 6px rgba(16, 24, 40, 0.12);
  cursor: pointer; transition: transform 0.15s ease, box-shadow 0.15s ease;
  font: 600 12px/1 -apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, "PingFang SC", "Microsoft YaHei", sans-serif;
}
.bubble:hover { transform: translateY(-2px); box-shadow: 0 10px 24px rgba(16, 24, 40, 0.26), 0 2px 6px rgba(16, 24, 40, 0.12); }
.bubble:focus-visible { outline: 3px solid var(--kefu-accent); outline-offset: 3px; }
.bubble svg { width: 28px; height: 28px; display: block; }
.bubble .close-icon { display: none; }
.open .bubble .chat-icon { display: none; }
.open .bubble .close-icon { display: block; }
.badge {
  position: absolute; top: -4px; right: -4px; min-width: 22px; height: 22px; padding: 0 6px;
  box-sizing: border-box; border-radius: 11px; border: 2px solid #fff;
  background: #e5484d; color: #fff; font-size: 12px; line-height: 18px; text-align: center;
}
.badge[hidden] { display: none; }
.panel {
  position: fixed; right: 20px; bottom: 92px;
  width: 380px; height: min(640px, calc(100vh - 116px));
  border-radius: 16px; overflow: hidden; background: #f4f6f9;
  box-shadow: 0 16px 48px rgba(16, 24, 40, 0.22), 0 2px 8px rgba(16, 24, 40, 0.1);
  opacity: 0; transform: translateY(12px) scale(0.98); transform-origin: bottom right;
  visibility: hidden; pointer-events: none;
  transition: opacity 0.18s ease, transform 0.18s ease, visibility 0s linear 0.18s;
}
.open .panel { opacity: 1; transform: none; visibility: visible; pointer-events: auto; transition: opacity 0.18s ease, transform 0.18s ease; }
iframe { position: relative; display: block; width: 100%; height: 100%; border: 0; margin: 0; padding: 0; background: transparent; }
.spinner {
  position: absolute; left: 50%; top: 50%; width: 26px; height: 26px; margin: -13px 0 0 -13px;
  border: 3px solid #cfd6e1; border-right-color: var(--kefu-accent); border-radius: 50%;
  animation: kefu-spin 0.9s linear infinite;
}
.loaded .spinner { display: none; }
@keyframes kefu-spin { to { transform: rotate(360deg); } }
@media (max-width: 480px) {
  .panel { right: 0; bottom: 0; width: 100vw; height: 100%; border-radius: 0; }
  .open .bubble { display: none; }
}
@media (prefers-reduced-motion: reduce) { .bubble, .panel { transition: none; } .spinner { animation: none; } }
`;

function svg(paths: string, cls: string): SVGSVGElement {
  const ns = "http://www.w3.org/2000/svg";
  const el = document.createElementNS(ns, "svg");
  el.setAttribute("viewBox", "0 0 24 24");
  el.setAttribute("aria-hidden", "true");
  el.setAttribute("class", cls);
  const p = document.createElementNS(ns, "path");
  p.setAttribute("d", paths);
  p.setAttribute("fill", "currentColor");
  el.appendChild(p);
  return el;
}

function mount(script: HTMLScriptElement) {
  const kefu = new URL(script.src, window.location.href);
  const kefuOrigin = kefu.origin;
  const title = (script.dataset.title ?? "").trim().slice(0, 80);
  const color = safeColor(script.dataset.color) ?? DEFAULT_COLOR;
  const lang = script.dataset.lang === "en" || script.dataset.lang === "zh-CN" ? script.dataset.lang : null;
  // The agent a page asks for (`csId`): waited for a while when offline, then the next agent.
  const agent = /^\d{1,20}$/.test(script.dataset.agent ?? "") ? script.dataset.agent! : null;

  // A custom element name: the shop's `div {…}` rules do not match it.
  const host = document.createElement("kefu-widget");
  pin(host, {
    display: "block",
    position: "fixed",
    right: "0",
    bottom: "0",
    width: "0",
    height: "0",
    overflow: "visible",
    "z-index": Z_TOP,
  });
  const root = host.attachShadow({ mode: "open" });

  const style = document.createElement("style");
  style.textContent = `:host { all: initial; --kefu-accent: ${color}; --kefu-contrast: #fff; }` + CSS;
  root.appendChild(style);

  const wrap = document.createElement("div");
  const panel = document.createElement("div");
  panel.className = "panel";
  const spinner = document.createElement("div");
  spinner.className = "spinner";
  spinner.setAttribute("aria-hidden", "true");
  panel.appendChild(spinner);
  const storage = pageStorage(() => window.localStorage);

  /** The chat, made on first need (see frameLoading.ts); null until then. */
  let frame: HTMLIFrameElement | null = null;
  function ensureFrame(): HTMLIFrameElement {
    if (frame) return frame;
    const f = document.createElement("iframe");
    const q = new URLSearchParams({ embed: "1", origin: window.location.origin, color });
    if (title) q.set("title", title);
    if (lang) q.set("lang", lang);
    if (agent) q.set("agent", agent);
    f.src = `${kefuOrigin}/chat?${q.toString()}`;
    f.title = title || "Chat";
    f.setAttribute("allow", "clipboard-write");
    f.setAttribute("referrerpolicy", "origin");
    f.addEventListener("load", () => {
      panel.classList.add("loaded");
      tellFrame();
    });
    panel.appendChild(f);
    frame = f;
    return f;
  }

  const bubble = document.createElement("button");
  bubble.type = "button";
  bubble.className = "bubble";
  bubble.setAttribute("aria-expanded", "false");
  bubble.appendChild(
    svg(
      "M12 3C7.03 3 3 6.58 3 11c0 2.2 1 4.2 2.64 5.64L5 21l4.13-2.07c.9.23 1.86.35 2.87.35 4.97 0 9-3.58 9-8s-4.03-8.28-9-8.28Z",
      "chat-icon",
    ),
  );
  bubble.appendChild(
    svg("M6.4 5 5 6.4 10.6 12 5 17.6 6.4 19l5.6-5.6 5.6 5.6 1.4-1.4-5.6-5.6L19 6.4 17.6 5 12 10.6 6.4 5Z", "close-icon"),
  );
  const badge = document.createElement("span");
  badge.className = "badge";
  badge.hidden = true;
  badge.setAttribute("data-kefu-badge", "");
  bubble.appendChild(badge);

  wrap.appendChild(panel);
  wrap.appendChild(bubble);
  root.appendChild(wrap);

  let open = false;
  let unread = 0;
  const label = title || "Chat";

  function render() {
    wrap.className = open ? "open" : "";
    bubble.setAttribute("aria-expanded", String(open));
    bubble.setAttribute("aria-label", unread > 0 && !open ? `${label} (${unread})` : label);
    badge.hidden = open || unread === 0;
    badge.textContent = unread > 99 ? "99+" : String(unread);
    host.setAttribute("data-unread", String(unread));
    host.setAttribute("data-open", String(open));
  }

  function tellFrame() {
    const msg: ToFrame = { source: EMBED_SOURCE, type: "visibility", open };
    frame?.contentWindow?.postMessage(msg, kefuOrigin);
  }

  function setOpen(v: boolean) {
    open = v;
    if (open) ensureFrame();
    render();
    tellFrame();
    if (open) frame?.focus();
    else bubble.focus();
  }

  bubble.addEventListener("click", () => setOpen(!open));
  window.addEventListener("message", (e: MessageEvent) => {
    if (!frame || e.source !== frame.contentWindow || e.origin !== kefuOrigin || !isToHost(e.data)) return;
    if (e.data.type === "unread") {
      unread = e.data.count;
      render();
    } else if (e.data.type === "close" && open) {
      setOpen(false);
    } else if (e.data.type === "conversation") {
      rememberConversation(storage, kefuOrigin, e.data.open);
    }
  });

  render();
  document.body.appendChild(host);
  if (frameLoadFor(storage, kefuOrigin) === "when-idle") whenIdle(window, ensureFrame);
}

(() => {
  if (window.__kefuWidget) return;
  window.__kefuWidget = true;
  const script = findScript();
  if (!script) return;
  if (document.body) mount(script);
  else document.addEventListener("DOMContentLoaded", () => mount(script), { once: true });
})();
