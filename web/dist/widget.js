(function(){"use strict";const h="kefu";function M(e){if(typeof e!="object"||e===null)return!1;const t=e;return t.source!==h?!1:t.type==="close"?!0:t.type==="unread"&&typeof t.count=="number"&&Number.isInteger(t.count)&&t.count>=0}function N(e){if(!e)return null;const t=e.trim();return/^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$/.test(t)?t.toLowerCase():null}const O="#2f6bd8",_="2147483000";function F(){const e=document.currentScript;if(e instanceof HTMLScriptElement&&e.src)return e;const t=document.querySelectorAll('script[src*="widget.js"]');return t.length?t[t.length-1]:null}function $(e,t){e.style.setProperty("all","initial","important");for(const[s,n]of Object.entries(t))e.style.setProperty(s,n,"important")}const P=`
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
iframe { display: block; width: 100%; height: 100%; border: 0; margin: 0; padding: 0; background: transparent; }
@media (max-width: 480px) {
  .panel { right: 0; bottom: 0; width: 100vw; height: 100%; border-radius: 0; }
  .open .bubble { display: none; }
}
@media (prefers-reduced-motion: reduce) { .bubble, .panel { transition: none; } }
`;function m(e,t){const s="http://www.w3.org/2000/svg",n=document.createElementNS(s,"svg");n.setAttribute("viewBox","0 0 24 24"),n.setAttribute("aria-hidden","true"),n.setAttribute("class",t);const l=document.createElementNS(s,"path");return l.setAttribute("d",e),l.setAttribute("fill","currentColor"),n.appendChild(l),n}function x(e){var E,A;const s=new URL(e.src,window.location.href).origin,n=((E=e.dataset.title)!=null?E:"").trim().slice(0,80),l=(A=N(e.dataset.color))!=null?A:O,w=e.dataset.lang==="en"||e.dataset.lang==="zh-CN"?e.dataset.lang:null,p=document.createElement("kefu-widget");$(p,{display:"block",position:"fixed",right:"0",bottom:"0",width:"0",height:"0",overflow:"visible","z-index":_});const y=p.attachShadow({mode:"open"}),v=document.createElement("style");v.textContent=`:host { all: initial; --kefu-accent: ${l}; --kefu-contrast: #fff; }`+P,y.appendChild(v);const u=document.createElement("div"),b=document.createElement("div");b.className="panel";const r=document.createElement("iframe"),f=new URLSearchParams({embed:"1",origin:window.location.origin,color:l});n&&f.set("title",n),w&&f.set("lang",w),r.src=`${s}/chat?${f.toString()}`,r.title=n||"Chat",r.setAttribute("allow","clipboard-write"),r.setAttribute("referrerpolicy","origin"),b.appendChild(r);const o=document.createElement("button");o.type="button",o.className="bubble",o.setAttribute("aria-expanded","false"),o.appendChild(m("M12 3C7.03 3 3 6.58 3 11c0 2.2 1 4.2 2.64 5.64L5 21l4.13-2.07c.9.23 1.86.35 2.87.35 4.97 0 9-3.58 9-8s-4.03-8.28-9-8.28Z","chat-icon")),o.appendChild(m("M6.4 5 5 6.4 10.6 12 5 17.6 6.4 19l5.6-5.6 5.6 5.6 1.4-1.4-5.6-5.6L19 6.4 17.6 5 12 10.6 6.4 5Z","close-icon"));const c=document.createElement("span");c.className="badge",c.hidden=!0,c.setAttribute("data-kefu-badge",""),o.appendChild(c),u.appendChild(b),u.appendChild(o),y.appendChild(u);let i=!1,d=0;const k=n||"Chat";function g(){u.className=i?"open":"",o.setAttribute("aria-expanded",String(i)),o.setAttribute("aria-label",d>0&&!i?`${k} (${d})`:k),c.hidden=i||d===0,c.textContent=d>99?"99+":String(d),p.setAttribute("data-unread",String(d)),p.setAttribute("data-open",String(i))}function C(){var L;const a={source:h,type:"visibility",open:i};(L=r.contentWindow)==null||L.postMessage(a,s)}function S(a){i=a,g(),C(),i?r.focus():o.focus()}o.addEventListener("click",()=>S(!i)),r.addEventListener("load",C),window.addEventListener("message",a=>{a.source!==r.contentWindow||a.origin!==s||!M(a.data)||(a.data.type==="unread"?(d=a.data.count,g()):a.data.type==="close"&&i&&S(!1))}),g(),document.body.appendChild(p)}(()=>{if(window.__kefuWidget)return;window.__kefuWidget=!0;const e=F();e&&(document.body?x(e):document.addEventListener("DOMContentLoaded",()=>x(e),{once:!0}))})()})();
