import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // Integration tests start real node processes; each test sets its own bound too.
    testTimeout: 60_000,
    hookTimeout: 60_000,
    teardownTimeout: 20_000,
    pool: "forks",
    // Two cores: more workers than that only makes timing-sensitive tests flaky.
    maxWorkers: 2,
    reporters: ["default", "./test/reporters/summary.ts"],
  },
});
