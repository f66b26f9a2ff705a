(function(){"use strict";const x="kefu";function M(e){if(typeof e!="object"||e===null)return!1;const t=e;return t.source!==x?!1:t.type==="close"?!0:t.type==="conversation"?typeof t.open=="boolean":t.type==="unread"&&typeof t.count=="number"&&Number.isInteger(t.count)&&t.count>=0}function O(e){if(!e)return null;const t=e.trim();return/^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$/.test(t)?t.toLowerCase():null}const b="kefu.widget.openConversation",F=3e3,T=1e3;function P(e){try{return e()}catch(t){return null}}function R(e,t){try{return(e==null?void 0:e.getItem(b))===t?"when-idle":"on-open"}catch(i){return"on-open"}}function U(e,t,i){try{i?e==null||e.setItem(b,t):(e==null?void 0:e.getItem(b))===t&&e.removeItem(b)}catch(o){}}function $(e,t){const i=()=>{typeof e.requestIdleCallback=="function"?e.requestIdleCallback(t,{timeout:F}):e.setTimeout(t,T)};e.document.readyState==="complete"?i():e.addEventListener("load",i,{once:!0})}const D="#2f6bd8",j="2147483000";function q(){const e=document.currentScript;if(e instanceof HTMLScriptElement&&e.src)return e;const t=document.querySelectorAll('script[src*="widget.js"]');return t.length?t[t.length-1]:null}function z(e,t){e.style.setProperty("all","initial","important");for(const[i,o]of Object.entries(t))e.style.setProperty(i,o,"important")}const B=`
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
`;function w(e,t){const i="http://www.w3.org/2000/svg",o=document.createElementNS(i,"svg");o.setAttribute("viewBox","0 0 24 24"),o.setAttribute("aria-hidden","true"),o.setAttribute("class",t);const l=document.createElementNS(i,"path");return l.setAttribute("d",e),l.setAttribute("fill","currentColor"),o.appendChild(l),o}function y(e){var _,N;const i=new URL(e.src,window.location.href).origin,o=((_=e.dataset.title)!=null?_:"").trim().slice(0,80),l=(N=O(e.dataset.color))!=null?N:D,v=e.dataset.lang==="en"||e.dataset.lang==="zh-CN"?e.dataset.lang:null,u=document.createElement("kefu-widget");z(u,{display:"block",position:"fixed",right:"0",bottom:"0",width:"0",height:"0",overflow:"visible","z-index":j});const C=u.attachShadow({mode:"open"}),k=document.createElement("style");k.textContent=`:host { all: initial; --kefu-accent: ${l}; --kefu-contrast: #fff; }`+B,C.appendChild(k);const m=document.createElement("div"),f=document.createElement("div");f.className="panel";const h=document.createElement("div");h.className="spinner",h.setAttribute("aria-hidden","true"),f.appendChild(h);const E=P(()=>window.localStorage);let r=null;function S(){if(r)return r;const n=document.createElement("iframe"),p=new URLSearchParams({embed:"1",origin:window.location.origin,color:l});return o&&p.set("title",o),v&&p.set("lang",v),n.src=`${i}/chat?${p.toString()}`,n.title=o||"Chat",n.setAttribute("allow","clipboard-write"),n.setAttribute("referrerpolicy","origin"),n.addEventListener("load",()=>{f.classList.add("loaded"),L()}),f.appendChild(n),r=n,n}const a=document.createElement("button");a.type="button",a.className="bubble",a.setAttribute("aria-expanded","false"),a.appendChild(w("M12 3C7.03 3 3 6.58 3 11c0 2.2 1 4.2 2.64 5.64L5 21l4.13-2.07c.9.23 1.86.35 2.87.35 4.97 0 9-3.58 9-8s-4.03-8.28-9-8.28Z","chat-icon")),a.appendChild(w("M6.4 5 5 6.4 10.6 12 5 17.6 6.4 19l5.6-5.6 5.6 5.6 1.4-1.4-5.6-5.6L19 6.4 17.6 5 12 10.6 6.4 5Z","close-icon"));const c=document.createElement("span");c.className="badge",c.hidden=!0,c.setAttribute("data-kefu-badge",""),a.appendChild(c),m.appendChild(f),m.appendChild(a),C.appendChild(m);let s=!1,d=0;const A=o||"Chat";function g(){m.className=s?"open":"",a.setAttribute("aria-expanded",String(s)),a.setAttribute("aria-label",d>0&&!s?`${A} (${d})`:A),c.hidden=s||d===0,c.textContent=d>99?"99+":String(d),u.setAttribute("data-unread",String(d)),u.setAttribute("data-open",String(s))}function L(){var p;const n={source:x,type:"visibility",open:s};(p=r==null?void 0:r.contentWindow)==null||p.postMessage(n,i)}function I(n){s=n,s&&S(),g(),L(),s?r==null||r.focus():a.focus()}a.addEventListener("click",()=>I(!s)),window.addEventListener("message",n=>{!r||n.source!==r.contentWindow||n.origin!==i||!M(n.data)||(n.data.type==="unread"?(d=n.data.count,g()):n.data.type==="close"&&s?I(!1):n.data.type==="conversation"&&U(E,i,n.data.open))}),g(),document.body.appendChild(u),R(E,i)==="when-idle"&&$(window,S)}(()=>{if(window.__kefuWidget)return;window.__kefuWidget=!0;const e=q();e&&(document.body?y(e):document.addEventListener("DOMContentLoaded",()=>y(e),{once:!0}))})()})();
