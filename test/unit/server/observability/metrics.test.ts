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

describe("NodeMetrics labels fed from device or client input", () => {
  /** Series of `name` in the scrape. */
  async function series(metrics: NodeMetrics, name: string): Promise<string[]> {
    return (await metrics.render()).body.split("\n").filter((line) => line.startsWith(`${name}{`)).sort();
  }

  it("made-up action statuses and origins from adapters add one UNRECOGNISED series, not one each", async () => {
    const metrics = new NodeMetrics({ connections: () => 0, roomsByType: () => ({}) });
    metrics.actions.inc({ status: "APPLIED", origin: "adapter" });
    for (let i = 0; i < 20; i++) metrics.actions.inc({ status: `MADE_UP_${i}`, origin: "adapter" });
    metrics.actions.inc({ status: "APPLIED", origin: "somewhere-else" });
    expect(await series(metrics, "tsunagi_teleop_actions_total")).toEqual([
      'tsunagi_teleop_actions_total{status="APPLIED",origin="UNRECOGNISED"} 1',
      'tsunagi_teleop_actions_total{status="APPLIED",origin="adapter"} 1',
      'tsunagi_teleop_actions_total{status="UNRECOGNISED",origin="adapter"} 20',
    ]);
  });

  it("error codes this build does not know (a peer's or a device's) are counted in one series", async () => {
    const metrics = new NodeMetrics({ connections: () => 0, roomsByType: () => ({}) });
    metrics.errors.inc({ code: "RATE_LIMITED", source: "flood" });
    for (let i = 0; i < 20; i++) metrics.errors.inc({ code: String(5000 + i), source: "gateway" });
    metrics.matchmake.inc({ method: "join", outcome: "ok" });
    for (let i = 0; i < 20; i++) metrics.matchmake.inc({ method: "join", outcome: String(6000 + i) });
    expect(await series(metrics, "tsunagi_errors_total")).toEqual([
      'tsunagi_errors_total{code="RATE_LIMITED",source="flood"} 1',
      'tsunagi_errors_total{code="UNRECOGNISED",source="gateway"} 20',
    ]);
    expect(await series(metrics, "tsunagi_matchmake_total")).toEqual([
      'tsunagi_matchmake_total{method="join",outcome="UNRECOGNISED"} 20',
      'tsunagi_matchmake_total{method="join",outcome="ok"} 1',
    ]);
  });

  it("the node's own troubles documented in docs/operations.md keep their names (they are no ErrorCode)", async () => {
    const metrics = new NodeMetrics({ connections: () => 0, roomsByType: () => ({}) });
    const audit = ["AUDIT_UNREACHABLE", "AUDIT_RESTORED", "AUDIT_LOST", "AUDIT_RECHAINED", "AUDIT_ARCHIVE_FAILED"];
    for (const code of audit) metrics.errors.inc({ code, source: "audit" });
    metrics.errors.inc({ code: "AUDIT_WRITE_FAILED", source: "teleop" });
    const found = await series(metrics, "tsunagi_errors_total");
    for (const code of audit) expect(found).toContain(`tsunagi_errors_total{code="${code}",source="audit"} 1`);
    expect(found).toContain('tsunagi_errors_total{code="AUDIT_WRITE_FAILED",source="teleop"} 1');
  });
});
