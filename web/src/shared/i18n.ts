// zh-CN and English in a small typed dictionary. The browser's language decides unless the user
// picked one (kept in localStorage).
import { computed, ref } from "vue";

export type Locale = "en" | "zh-CN";
export const LOCALES: readonly Locale[] = ["en", "zh-CN"];

const en = {
  appName: "kefu",
  language: "Language",
  "conn.connecting": "Connecting…",
  "conn.reconnecting": "Reconnecting…",
  "conn.offline": "You're offline. We'll reconnect as soon as the network is back.",
  "conn.expired": "Your session has expired.",
  "status.sending": "Sending…",
  "status.sent": "Sent",
  "status.read": "Read",
  "status.failed": "Not sent",
  retry: "Retry",
  typing: "{name} is typing…",
  online: "Online",
  offline: "Offline",
  today: "Today",
  yesterday: "Yesterday",
  "composer.label": "Message",
  "composer.placeholder": "Write a message…",
  "composer.hint": "Enter to send · Shift+Enter for a new line",
  "composer.send": "Send",
  "composer.tooLong": "This message is too long ({n} of {max} bytes).",
  loadingOlder: "Loading earlier messages…",
  startOfConversation: "This is the start of the conversation",
  "error.generic": "Something went wrong. Please try again.",
  "error.network": "Can't reach the server. Please try again.",
  "error.rate_limited": "You're sending messages too quickly. Wait a moment.",
  "error.too_large": "This message is too long.",
  "widget.title": "Chat with us",
  "widget.welcome": "Hi! How can we help you today?",
  "widget.welcomeSub": "Send us a message — we'll reply right here.",
  "widget.queued": "All agents are busy or offline — leave a message, we'll reply here.",
  "widget.assigned": "{name} joined the conversation",
  "widget.agentAway": "{name} is away right now — leave a message, we'll reply here.",
  "widget.team": "Support team",
  "widget.close": "Minimize chat",
  "widget.open": "Open chat",
  "widget.startError": "We couldn't start the chat.",
  "widget.tryAgain": "Try again",
  "widget.starting": "Starting the chat…",
  "widget.expired": "This chat session has expired.",
  "widget.newChat": "Start a new chat",
  "console.title": "Agent console",
  "console.customers": "Customers",
  "console.noCustomers": "No conversations yet. New customers appear here as soon as they write.",
  "console.select": "Select a conversation",
  "console.selectSub": "Your customers are on the left. Drafts are kept when you switch.",
  "console.noMessages": "No messages yet.",
  "console.back": "Back to customers",
  "console.notifyEnable": "Enable notifications",
  "console.notifyOn": "Notifications on",
  "console.notifyBlocked": "Notifications are blocked in this browser",
  "console.notifyTitle": "New message from {name}",
  "console.notifyTitleAnon": "New message",
  "console.you": "You: ",
  "console.unread": "{n} unread",
  "console.signedInAs": "Signed in as {name}",
  "console.reload": "Refresh",
  "login.title": "Sign in",
  "login.consoleSub": "Sign in to answer your customers.",
  "login.adminSub": "Sign in as an administrator.",
  "login.username": "Username",
  "login.password": "Password",
  "login.submit": "Sign in",
  "login.submitting": "Signing in…",
  "login.failed": "Wrong username or password.",
  "login.notStaff": "This account can't use the agent console.",
  "login.notAdmin": "This account is not an administrator.",
  logout: "Sign out",
  "admin.title": "Administration",
  "admin.agents": "Agents",
  "admin.agentsSub": "Agents sign in at /console to answer customers.",
  "admin.create": "Create an agent",
  "admin.displayName": "Display name",
  "admin.optional": "optional",
  "admin.usernameHelp": "3–32 characters: a–z, 0–9, dot, underscore, hyphen.",
  "admin.passwordHelp": "8–128 characters.",
  "admin.displayNameHelp": "Shown to customers. Up to 64 characters.",
  "admin.submit": "Create agent",
  "admin.submitting": "Creating…",
  "admin.created": "{name} can now sign in at /console as “{username}”.",
  "admin.conflict": "This username is already taken.",
  "admin.invalid": "The server refused a field: {message}",
  "admin.usernameInvalid": "Use 3–32 characters: a–z, 0–9, dot, underscore, hyphen.",
  "admin.passwordInvalid": "Use 8–128 characters.",
  "admin.displayNameInvalid": "Use at most 64 characters.",
  "admin.recent": "Created in this session",
  "admin.recentEmpty": "Agents you create appear here.",
  "landing.tagline": "Real-time customer service chat",
  "landing.chat": "Customer chat",
  "landing.chatSub": "What your customers see, full screen on any phone.",
  "landing.console": "Agent console",
  "landing.consoleSub": "Answer customers live, several at a time.",
  "landing.admin": "Administration",
  "landing.adminSub": "Create accounts for your agents.",
  "landing.embed": "Add the chat bubble to your site",
  "landing.embedSub": "Paste this before </body>. The chat opens in an isolated frame, so your styles and ours never clash.",
} as const;

export type MessageKey = keyof typeof en;
type Dictionary = Record<MessageKey, string>;

const zhCN: Dictionary = {
  appName: "客服",
  language: "语言",
  "conn.connecting": "正在连接…",
  "conn.reconnecting": "正在重新连接…",
  "conn.offline": "网络已断开，恢复后会自动重新连接。",
  "conn.expired": "会话已过期。",
  "status.sending": "发送中…",
  "status.sent": "已发送",
  "status.read": "已读",
  "status.failed": "发送失败",
  retry: "重试",
  typing: "{name} 正在输入…",
  online: "在线",
  offline: "离线",
  today: "今天",
  yesterday: "昨天",
  "composer.label": "消息",
  "composer.placeholder": "输入消息…",
  "composer.hint": "Enter 发送 · Shift+Enter 换行",
  "composer.send": "发送",
  "composer.tooLong": "消息过长（{n} / {max} 字节）。",
  loadingOlder: "正在加载更早的消息…",
  startOfConversation: "会话从这里开始",
  "error.generic": "出错了，请重试。",
  "error.network": "无法连接服务器，请重试。",
  "error.rate_limited": "发送太快了，请稍等片刻。",
  "error.too_large": "消息过长。",
  "widget.title": "在线客服",
  "widget.welcome": "您好！有什么可以帮您？",
  "widget.welcomeSub": "给我们发消息，我们会在这里回复您。",
  "widget.queued": "客服暂时都在忙或不在线——请留言，我们会在这里回复您。",
  "widget.assigned": "{name} 已接入会话",
  "widget.agentAway": "{name} 暂时不在——请留言，我们会在这里回复您。",
  "widget.team": "客服团队",
  "widget.close": "收起聊天",
  "widget.open": "打开聊天",
  "widget.startError": "无法开始会话。",
  "widget.tryAgain": "重试",
  "widget.starting": "正在开始会话…",
  "widget.expired": "本次会话已过期。",
  "widget.newChat": "开始新的会话",
  "console.title": "客服工作台",
  "console.customers": "客户",
  "console.noCustomers": "暂无会话。客户发来消息后会立即出现在这里。",
  "console.select": "选择一个会话",
  "console.selectSub": "客户列表在左侧，切换会话时草稿会保留。",
  "console.noMessages": "暂无消息。",
  "console.back": "返回客户列表",
  "console.notifyEnable": "开启桌面通知",
  "console.notifyOn": "桌面通知已开启",
  "console.notifyBlocked": "浏览器已禁止通知",
  "console.notifyTitle": "{name} 发来新消息",
  "console.notifyTitleAnon": "新消息",
  "console.you": "我：",
  "console.unread": "{n} 条未读",
  "console.signedInAs": "当前账号：{name}",
  "console.reload": "刷新",
  "login.title": "登录",
  "login.consoleSub": "登录后即可回复客户。",
  "login.adminSub": "以管理员身份登录。",
  "login.username": "用户名",
  "login.password": "密码",
  "login.submit": "登录",
  "login.submitting": "正在登录…",
  "login.failed": "用户名或密码错误。",
  "login.notStaff": "该账号不能使用客服工作台。",
  "login.notAdmin": "该账号不是管理员。",
  logout: "退出登录",
  "admin.title": "管理后台",
  "admin.agents": "客服人员",
  "admin.agentsSub": "客服人员在 /console 登录后即可回复客户。",
  "admin.create": "新建客服账号",
  "admin.displayName": "显示名称",
  "admin.optional": "可选",
  "admin.usernameHelp": "3–32 个字符：a–z、0–9、点、下划线、连字符。",
  "admin.passwordHelp": "8–128 个字符。",
  "admin.displayNameHelp": "客户会看到这个名称，最多 64 个字符。",
  "admin.submit": "创建账号",
  "admin.submitting": "正在创建…",
  "admin.created": "{name} 现在可以用“{username}”在 /console 登录了。",
  "admin.conflict": "该用户名已被占用。",
  "admin.invalid": "服务器拒绝了某个字段：{message}",
  "admin.usernameInvalid": "请使用 3–32 个字符：a–z、0–9、点、下划线、连字符。",
  "admin.passwordInvalid": "请使用 8–128 个字符。",
  "admin.displayNameInvalid": "最多 64 个字符。",
  "admin.recent": "本次创建的账号",
  "admin.recentEmpty": "新建的客服账号会显示在这里。",
  "landing.tagline": "实时在线客服系统",
  "landing.chat": "客户聊天",
  "landing.chatSub": "客户看到的界面，手机上全屏显示。",
  "landing.console": "客服工作台",
  "landing.consoleSub": "实时回复客户，可同时处理多个会话。",
  "landing.admin": "管理后台",
  "landing.adminSub": "为客服人员创建账号。",
  "landing.embed": "在您的网站上添加聊天气泡",
  "landing.embedSub": "把这段代码粘贴到 </body> 之前。聊天在独立的框架中打开，您的样式与我们的互不影响。",
};

const dictionaries: Record<Locale, Dictionary> = { en, "zh-CN": zhCN };

const STORAGE_KEY = "kefu.locale";

/** A stored choice wins; else the first browser language we speak; else English. */
export function detectLocale(stored: string | null, languages: readonly string[]): Locale {
  if (stored === "en" || stored === "zh-CN") return stored;
  for (const lang of languages) {
    const l = lang.toLowerCase();
    if (l.startsWith("zh")) return "zh-CN";
    if (l.startsWith("en")) return "en";
  }
  return "en";
}

export function translate(locale: Locale, key: MessageKey, params?: Record<string, string | number>): string {
  const text = dictionaries[locale][key];
  if (!params) return text;
  return text.replace(/\{(\w+)\}/g, (all, name: string) => (name in params ? String(params[name]) : all));
}

function initialLocale(): Locale {
  if (typeof window === "undefined") return "en";
  const forced = new URLSearchParams(window.location.search).get("lang");
  if (forced === "en" || forced === "zh-CN") return forced;
  let stored: string | null = null;
  try {
    stored = window.localStorage.getItem(STORAGE_KEY);
  } catch {
    // Storage may be blocked (e.g. third-party iframes in some browsers).
  }
  return detectLocale(stored, window.navigator.languages ?? [window.navigator.language]);
}

const current = ref<Locale>(initialLocale());

function applyToDocument(l: Locale) {
  if (typeof document !== "undefined") document.documentElement.lang = l;
}
applyToDocument(current.value);

export function useI18n() {
  return {
    locale: computed(() => current.value),
    t: (key: MessageKey, params?: Record<string, string | number>) => translate(current.value, key, params),
    setLocale(l: Locale) {
      current.value = l;
      applyToDocument(l);
      try {
        window.localStorage.setItem(STORAGE_KEY, l);
      } catch {
        // Not persisted; the choice still applies to this page.
      }
    },
  };
}
