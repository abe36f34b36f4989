/**
 * Which errors say the cluster's etcd is out of reach for now (answered REGION_UNAVAILABLE,
 * retryable, instead of INTERNAL): an open circuit breaker of the etcd client, and a
 * recoverable etcd error (no member answered); nothing else.
 */
import { describe, expect, it } from "vitest";
import { BrokenCircuitError } from "cockatiel";
import { GRPCUnavailableError } from "etcd3";
import { etcdUnreachable } from "../../../../server/cluster/etcd/EtcdSession.ts";

describe("etcdUnreachable", () => {
  it("is true of an open circuit breaker and of an unavailable member, false of anything else", () => {
    expect(etcdUnreachable(new BrokenCircuitError())).toBe(true);
    expect(etcdUnreachable(new GRPCUnavailableError("no connection"))).toBe(true);
    expect(etcdUnreachable(new Error("room full"))).toBe(false);
    expect(etcdUnreachable("a string")).toBe(false);
    expect(etcdUnreachable(undefined)).toBe(false);
  });
});
