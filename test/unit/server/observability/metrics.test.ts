/** NodeMetrics' hot-path command counter as Prometheus reads it: names, origins, and one bucket for statuses this build does not know. */
import { describe, expect, it } from "vitest";
import { tsunagi } from "../../../../proto/index.ts";
import { NodeMetrics } from "../../../../server/observability/metrics.ts";

const { Status, Origin } = tsunagi.v1.CommandAck;

describe("NodeMetrics.countCommand", () => {
  it("counts acks by status and origin, and any status this build does not know in one series", async () => {
    const metrics = new NodeMetrics({ connections: () => 0, roomsByType: () => ({}) });
    metrics.countCommand(Status.APPLIED, Origin.ADAPTER);
    metrics.countCommand(Status.APPLIED, Origin.ADAPTER);
    metrics.countCommand(Status.UNKNOWN, Origin.ROOM);
    metrics.countCommand(-3, Origin.ADAPTER); // a garbled status from an adapter
    metrics.countCommand(4711, Origin.ADAPTER);
    const lines = (await metrics.render()).body.split("\n").filter((line) => line.startsWith("tsunagi_teleop_commands_total{"));
    expect(lines.sort()).toEqual([
      'tsunagi_teleop_commands_total{status="APPLIED",origin="adapter"} 2',
      'tsunagi_teleop_commands_total{status="UNKNOWN",origin="room"} 1',
      'tsunagi_teleop_commands_total{status="UNRECOGNISED",origin="adapter"} 2',
    ]);
  });
});
