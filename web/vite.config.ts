import { fileURLToPath, URL } from "node:url";
import { defineConfig, type Connect, type Plugin } from "vite";
import vue from "@vitejs/plugin-vue";
import { precompress } from "./build/precompress";

const page = (name: string) => fileURLToPath(new URL(`./${name}.html`, import.meta.url));
const backend = process.env.KEFU_BACKEND ?? "http://127.0.0.1:3000";
const PAGES = ["chat", "console", "admin"];

/** `vite dev` and `vite preview` answer /chat with chat.html, as the server does. */
function cleanUrls(): Plugin {
  const rewrite: Connect.NextHandleFunction = (req, _res, next) => {
    const m = /^\/([a-z]+)\/?(\?.*)?$/.exec(req.url ?? "");
    if (m && PAGES.includes(m[1]!)) req.url = `/${m[1]}.html${m[2] ?? ""}`;
    next();
  };
  return {
    name: "kefu-clean-urls",
    configureServer: (server) => void server.middlewares.use(rewrite),
    configurePreviewServer: (server) => void server.middlewares.use(rewrite),
  };
}

// A multi-page build: each page (landing, chat, console, admin) is its own HTML entry, so the
// customer chat never downloads the console. The server serves `/chat` from `dist/chat.html`.
// The embeddable loader (`dist/widget.js`) is a second build: see vite.widget.config.ts. Each build
// writes `x.br` and `x.gz` beside its text files (build/precompress.ts).
export default defineConfig({
  base: "/",
  plugins: [vue(), cleanUrls(), precompress()],
  build: {
    outDir: "dist",
    emptyOutDir: true,
    sourcemap: false,
    target: "es2020",
    // Small assets are inlined rather than hashed files; keeps dist/ tidy.
    assetsInlineLimit: 4096,
    rollupOptions: {
      input: Object.fromEntries(["index", ...PAGES].map((name) => [name, page(name)])),
      output: {
        // Stable, readable names for the shared chunks (the hash is of the content only).
        manualChunks(id) {
          if (/node_modules\/(socket\.io-client|engine\.io-client|socket\.io-parser|engine\.io-parser|@socket\.io|debug|ms|xmlhttprequest-ssl)\//.test(id)) return "socket";
          if (/node_modules\/(@vue|vue)\//.test(id)) return "vue";
          return undefined;
        },
      },
    },
  },
  server: {
    proxy: {
      "/api": { target: backend, changeOrigin: true },
      "/socket.io": { target: backend, changeOrigin: true, ws: true },
      "/healthz": { target: backend },
    },
  },
  preview: {
    proxy: {
      "/api": { target: backend, changeOrigin: true },
      "/socket.io": { target: backend, changeOrigin: true, ws: true },
    },
  },
});
