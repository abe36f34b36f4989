/**
 * The web apps' build: one Vite app (web/), bundled with the client SDK into web/dist,
 * which every node serves (server/console/webApp.ts) under /app/. Preact's JSX.
 *
 *   npm run build:web     (npm ci runs it too)
 */
import { defineConfig } from "vite";

export default defineConfig({
  root: import.meta.dirname,
  base: "/app/",
  logLevel: "warn",
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: { outDir: "dist", emptyOutDir: true, target: "es2022", sourcemap: false, chunkSizeWarningLimit: 1024 },
});
