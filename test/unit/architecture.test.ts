/**
 * The map of docs/architecture.md as a test: it reads every import of the project's
 * TypeScript and fails on one that points the wrong way.
 *
 *   proto/        imports nothing of ours
 *   common/       proto/
 *   server/       proto/, common/; of rooms/, only server/main.ts (it hands the room modules to the node)
 *   rooms/        proto/, common/, server/
 *   client-sdk/   proto/, common/
 *   devices/      proto/, common/
 *   cli/, demo/   all of the above, not each other
 *   bench/, test/, scripts/   anything
 *
 * A folder may always import itself. Nothing but bench/, test/ and scripts/ imports
 * cli/, demo/, bench/ or test/.
 */
import { readFileSync, readdirSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { repoRoot } from "../fixtures/processes.ts";

const layers = ["proto", "common", "server", "rooms", "client-sdk", "devices", "web", "cli", "demo", "bench", "test", "scripts"] as const;
type Layer = (typeof layers)[number];

const libraries: readonly Layer[] = ["proto", "common", "server", "rooms", "client-sdk", "devices"];

/** What each folder may import besides itself. */
const allowed: Record<Layer, readonly Layer[]> = {
  proto: [],
  common: ["proto"],
  server: ["proto", "common"],
  rooms: ["proto", "common", "server"],
  "client-sdk": ["proto", "common"],
  devices: ["proto", "common"],
  // the web apps run in a browser: the SDK, the contract and the shared helpers, never the node
  web: ["proto", "common", "client-sdk"],
  cli: libraries,
  demo: libraries,
  bench: layers,
  test: layers,
  scripts: layers,
};

/** The one file of a library allowed one more folder, and why. */
const exceptions: Record<string, { layer: Layer; why: string }> = {
  "server/main.ts": { layer: "rooms", why: "the entry hands the room modules to the node" },
};

interface Import {
  /** The importing file, relative to the repository root. */
  from: string;
  /** The imported file, relative to the repository root. */
  to: string;
  line: number;
}

/** Static imports and re-exports, dynamic import() and vi.mock() of relative paths. */
const importPattern = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+|\bvi\.mock\(\s*)(["'])(\.{1,2}\/[^"']+)\1/g;

/** The relative imports of one file's source. */
export function importsOf(file: string, source: string): Import[] {
  const found: Import[] = [];
  for (const match of source.matchAll(importPattern)) {
    const to = path.posix.normalize(path.posix.join(path.posix.dirname(file), match[2]!));
    found.push({ from: file, to, line: source.slice(0, match.index).split("\n").length });
  }
  return found;
}

function layerOf(file: string): Layer | undefined {
  const top = file.split("/")[0];
  return (layers as readonly string[]).includes(top!) ? (top as Layer) : undefined;
}

/** Why an import breaks the map, or undefined when it is allowed. */
export function violation(edge: Import): string | undefined {
  const from = layerOf(edge.from);
  const to = layerOf(edge.to);
  if (!from) return undefined;
  if (!to) return `${edge.from}:${edge.line} imports ${edge.to}, outside the project's folders`;
  if (from === to) return undefined;
  if (allowed[from].includes(to)) return undefined;
  if (exceptions[edge.from]?.layer === to) return undefined;
  return `${edge.from}:${edge.line} imports ${edge.to}: ${from}/ may import ${allowed[from].length ? allowed[from].map((layer) => `${layer}/`).join(", ") : "nothing of ours"}`;
}

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(path.join(repoRoot, dir), { withFileTypes: true })) {
    const relative = path.posix.join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name === "node_modules" || relative === "proto/gen" || relative === "web/dist") continue;
      out.push(...sourceFiles(relative));
    } else if (/\.(ts|tsx|mts|mjs|js)$/.test(entry.name) && !entry.name.endsWith(".d.ts")) {
      out.push(relative);
    }
  }
  return out;
}

describe("the architecture map", () => {
  const files = layers.flatMap((layer) => sourceFiles(layer));
  const edges = files.flatMap((file) => importsOf(file, readFileSync(path.join(repoRoot, file), "utf8")));

  it("reads the project's imports", () => {
    expect(files.length).toBeGreaterThan(150);
    expect(edges.length).toBeGreaterThan(500);
  });

  it("every import points down the map", () => {
    expect(edges.map(violation).filter(Boolean)).toEqual([]);
  });

  it("catches a wrong import in each direction the map forbids", () => {
    const wrong: Array<[string, string]> = [
      ["devices/adapter/AdapterRuntime.ts", "import { TsunagiClient } from \"../../client-sdk/TsunagiClient.ts\";"],
      ["devices/adapter/AdapterRuntime.ts", "import { proveChallenge } from \"../../server/auth/DeviceCredentials.ts\";"],
      ["devices/drivers/index.ts", "const room = await import(\"../../rooms/teleop/TeleopRoom.ts\");"],
      ["client-sdk/index.ts", "export { RegionNode } from \"../server/RegionNode.ts\";"],
      ["common/ClockSync.ts", "import type { TeleopRoom } from \"../rooms/teleop/TeleopRoom.ts\";"],
      ["server/context.ts", "import type { AuditSink } from \"../rooms/teleop/AuditLog.ts\";"],
      ["server/RegionNode.ts", "import { startDemo } from \"../demo/Demo.ts\";"],
      ["rooms/expo/ExpoRoom.ts", "import { cliEnv } from \"../../cli/env.ts\";"],
      ["proto/index.ts", "import { TokenBucket } from \"../common/TokenBucket.ts\";"],
      ["demo/Demo.ts", "import { cliEnv } from \"../cli/env.ts\";"],
      ["server/http/routes.ts", "import { startNode } from \"../../test/fixtures/processes.ts\";"],
    ];
    for (const [file, line] of wrong) {
      const found = importsOf(file, line);
      expect(found, line).toHaveLength(1);
      expect(violation(found[0]!), `${file}: ${line}`).toMatch(/ may import /);
    }
  });

  it("lets each folder import what the map allows", () => {
    const right: Array<[string, string]> = [
      ["server/main.ts", "import { roomModules } from \"../rooms/index.ts\";"],
      ["rooms/teleop/TeleopRoom.ts", "import { nodeContext } from \"../../server/context.ts\";"],
      ["devices/adapter/CommandGuard.ts", "import { resolveAxisValues } from \"../../proto/deviceProfile.ts\";"],
      ["client-sdk/index.ts", "export { ClockSync } from \"../common/ClockSync.ts\";"],
      ["cli/operator/main.ts", "import { OperatorControls } from \"../../client-sdk/OperatorControls.ts\";"],
      ["test/integration/teleop.test.ts", "import { run } from \"../../bench/control.ts\";"],
    ];
    for (const [file, line] of right) expect(violation(importsOf(file, line)[0]!), line).toBeUndefined();
  });
});
