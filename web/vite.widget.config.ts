import { fileURLToPath, URL } from "node:url";
import { defineConfig } from "vite";
import { precompress } from "./build/precompress";

// The loader a shop embeds: one self-contained classic script at the stable path dist/widget.js.
// It runs after the main build and must not wipe its output.
export default defineConfig({
  plugins: [precompress()],
  publicDir: false,
  build: {
    outDir: "dist",
    emptyOutDir: false,
    sourcemap: false,
    target: "es2018",
    copyPublicDir: false,
    lib: {
      entry: fileURLToPath(new URL("./src/loader/widget.ts", import.meta.url)),
      name: "KefuWidget",
      formats: ["iife"],
      fileName: () => "widget.js",
    },
  },
});
