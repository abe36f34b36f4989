/**
 * What `npm start` shows a newcomer: the node's addresses and how to get in. Later
 * capabilities (teleoperation, expo) open their demo rooms here.
 */
import type { RegionNode } from "./RegionNode.ts";

export async function startDemo(node: RegionNode) {
  const lines = [
    `Tsunagi region node "${node.nodeId}" (region ${node.regionId}) is up.`,
    `  health:   ${node.httpUrl}/healthz`,
    `  metrics:  ${node.httpUrl}/metrics`,
  ];
  if (node.config.devMode) {
    lines.push(`  token:    curl '${node.httpUrl}/dev/token?role=visitor'   (dev mode only)`);
  }
  lines.push(`  lobby:    join room "lobby" with @colyseus/sdk at ws://${node.publicAddress}`);
  node.logger.info({ demo: true }, lines.join("\n"));
}
