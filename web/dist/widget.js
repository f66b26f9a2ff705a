(function(){"use strict";const x="kefu";function F(e){if(typeof e!="object"||e===null)return!1;const t=e;return t.source!==x?!1:t.type==="close"?!0:t.type==="conversation"?typeof t.open=="boolean":t.type==="unread"&&typeof t.count=="number"&&Number.isInteger(t.count)&&t.count>=0}function T(e){if(!e)return null;const t=e.trim();return/^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$/.test(t)?t.toLowerCase():null}const b="kefu.widget.openConversation",$=3e3,P=1e3;function R(e){try{return e()}catch(t){return null}}function U(e,t){try{return(e==null?void 0:e.getItem(b))===t?"when-idle":"on-open"}catch(i){return"on-open"}}function D(e,t,i){try{i?e==null||e.setItem(b,t):(e==null?void 0:e.getItem(b))===t&&e.removeItem(b)}catch(o){}}function j(e,t){const i=()=>{typeof e.requestIdleCallback=="function"?e.requestIdleCallback(t,{timeout:$}):e.setTimeout(t,P)};e.document.readyState==="complete"?i():e.addEventListener("load",i,{once:!0})}const q="#2f6bd8",z="2147483000";function B(){const e=document.currentScript;if(e instanceof HTMLScriptElement&&e.src)return e;const t=document.querySelectorAll('script[src*="widget.js"]');return t.length?t[t.length-1]:null}function W(e,t){e.style.setProperty("all","initial","important");for(const[i,o]of Object.entries(t))e.style.setProperty(i,o,"important")}const Y=`
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
`;function w(e,t){const i="http://www.w3.org/2000/svg",o=document.createElementNS(i,"svg");o.setAttribute("viewBox","0 0 24 24"),o.setAttribute("aria-hidden","true"),o.setAttribute("class",t);const c=document.createElementNS(i,"path");return c.setAttribute("d",e),c.setAttribute("fill","currentColor"),o.appendChild(c),o}function y(e){var N,M,O;const i=new URL(e.src,window.location.href).origin,o=((N=e.dataset.title)!=null?N:"").trim().slice(0,80),c=(M=T(e.dataset.color))!=null?M:q,v=e.dataset.lang==="en"||e.dataset.lang==="zh-CN"?e.dataset.lang:null,C=/^\d{1,20}$/.test((O=e.dataset.agent)!=null?O:"")?e.dataset.agent:null,p=document.createElement("kefu-widget");W(p,{display:"block",position:"fixed",right:"0",bottom:"0",width:"0",height:"0",overflow:"visible","z-index":z});const k=p.attachShadow({mode:"open"}),E=document.createElement("style");E.textContent=`:host { all: initial; --kefu-accent: ${c}; --kefu-contrast: #fff; }`+Y,k.appendChild(E);const m=document.createElement("div"),f=document.createElement("div");f.className="panel";const h=document.createElement("div");h.className="spinner",h.setAttribute("aria-hidden","true"),f.appendChild(h);const S=R(()=>window.localStorage);let a=null;function A(){if(a)return a;const n=document.createElement("iframe"),l=new URLSearchParams({embed:"1",origin:window.location.origin,color:c});return o&&l.set("title",o),v&&l.set("lang",v),C&&l.set("agent",C),n.src=`${i}/chat?${l.toString()}`,n.title=o||"Chat",n.setAttribute("allow","clipboard-write"),n.setAttribute("referrerpolicy","origin"),n.addEventListener("load",()=>{f.classList.add("loaded"),I()}),f.appendChild(n),a=n,n}const r=document.createElement("button");r.type="button",r.className="bubble",r.setAttribute("aria-expanded","false"),r.appendChild(w("M12 3C7.03 3 3 6.58 3 11c0 2.2 1 4.2 2.64 5.64L5 21l4.13-2.07c.9.23 1.86.35 2.87.35 4.97 0 9-3.58 9-8s-4.03-8.28-9-8.28Z","chat-icon")),r.appendChild(w("M6.4 5 5 6.4 10.6 12 5 17.6 6.4 19l5.6-5.6 5.6 5.6 1.4-1.4-5.6-5.6L19 6.4 17.6 5 12 10.6 6.4 5Z","close-icon"));const u=document.createElement("span");u.className="badge",u.hidden=!0,u.setAttribute("data-kefu-badge",""),r.appendChild(u),m.appendChild(f),m.appendChild(r),k.appendChild(m);let s=!1,d=0;const L=o||"Chat";function g(){m.className=s?"open":"",r.setAttribute("aria-expanded",String(s)),r.setAttribute("aria-label",d>0&&!s?`${L} (${d})`:L),u.hidden=s||d===0,u.textContent=d>99?"99+":String(d),p.setAttribute("data-unread",String(d)),p.setAttribute("data-open",String(s))}function I(){var l;const n={source:x,type:"visibility",open:s};(l=a==null?void 0:a.contentWindow)==null||l.postMessage(n,i)}function _(n){s=n,s&&A(),g(),I(),s?a==null||a.focus():r.focus()}r.addEventListener("click",()=>_(!s)),window.addEventListener("message",n=>{!a||n.source!==a.contentWindow||n.origin!==i||!F(n.data)||(n.data.type==="unread"?(d=n.data.count,g()):n.data.type==="close"&&s?_(!1):n.data.type==="conversation"&&D(S,i,n.data.open))}),g(),document.body.appendChild(p),U(S,i)==="when-idle"&&j(window,A)}(()=>{if(window.__kefuWidget)return;window.__kefuWidget=!0;const e=B();e&&(document.body?y(e):document.addEventListener("DOMContentLoaded",()=>y(e),{once:!0}))})()})();
