import { defineConfig } from "vite";
import { svelte } from "@sveltejs/vite-plugin-svelte";

// The console is built into the Go package that embeds it. Nothing is
// inlined as a data: URL or an inline script, so the page runs under a
// Content-Security-Policy of script-src 'self' and style-src 'self'.
export default defineConfig({
  plugins: [svelte()],
  build: {
    outDir: "../api/console/dist",
    emptyOutDir: true,
    assetsInlineLimit: 0,
    cssCodeSplit: false,
    modulePreload: { polyfill: false },
    target: "es2022",
    reportCompressedSize: true,
  },
  server: {
    proxy: { "/api": "http://127.0.0.1:8080" },
  },
});
