import "../server/polyfills.ts";
import { it } from "vitest";
import { randomUUID } from "node:crypto";
import { startNode, startRedis } from "../test/fixtures/processes.ts";
import { startEtcd } from "../test/fixtures/etcd.ts";
import { testToken } from "../test/fixtures/tokens.ts";
import { TsunagiClient } from "../client-sdk/index.ts";

it("debug", { timeout: 60_000 }, async () => {
  const clusterName = `fence-${randomUUID().slice(0, 8)}`;
  const [etcd, redis] = await Promise.all([startEtcd({ members: 3 }), startRedis()]);
  const node = await startNode({ regionId: "jp-tokyo", nodeId: "tokyo-f1", redisUrl: redis.url, clusterName, env: { TSUNAGI_LOG_LEVEL: "debug" },
    extraArgs: ["--etcd-endpoints", etcd.endpoints.join(","), "--cluster-heartbeat-ms", "250", "--cluster-node-ttl-ms", "1000", "--etcd-call-timeout-ms", "500"] });
  const session = await new TsunagiClient({ url: node.httpUrl, token: await testToken(clusterName, "host", "x") }).joinOrCreate("session", { roomId: "f" });
  await Promise.all([etcd.members[1].kill(), etcd.members[2].kill()]);
  for (let i = 0; i < 8; i++) {
    await new Promise((r) => setTimeout(r, 700));
    try { const r = await session.request({ ping: { clientTimeMs: 1 } }, 1500); console.log(i, "reply", r.body); } catch (e) { console.log(i, "error", (e as any).code, (e as Error).message); }
  }
  console.log(node.output().split("\n").filter((l) => /lease|etcd|quorum/i.test(l)).slice(-15).join("\n"));
  await node.stop(); await redis.stop(); await etcd.stop();
});
