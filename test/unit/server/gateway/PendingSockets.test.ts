/**
 * PendingSockets: sockets without a completed hello, capped per address and in all; a
 * release frees exactly one place, once.
 */
import { describe, expect, it } from "vitest";
import { PendingSockets } from "../../../../server/gateway/PendingSockets.ts";

describe("PendingSockets", () => {
  it("refuses past the per-address cap while other addresses still get in, and past the total cap for everyone", () => {
    const pending = new PendingSockets({ perAddress: 2, total: 3 });
    expect(pending.admit("10.0.0.1")).toBe("admitted");
    expect(pending.admit("10.0.0.1")).toBe("admitted");
    expect(pending.admit("10.0.0.1")).toBe("address");
    expect(pending.admit("10.0.0.2")).toBe("admitted");
    expect(pending.admit("10.0.0.3")).toBe("total");
    expect(pending.size).toBe(3);
    pending.release("10.0.0.1");
    expect(pending.admit("10.0.0.3")).toBe("admitted");
  });

  it("admitOrRefuse hands out a release that counts once, and words for the refusal, logged once a second at most", () => {
    const pending = new PendingSockets({ perAddress: 1, total: 10 });
    const first = pending.admitOrRefuse("10.0.0.1", 0);
    expect(first).toHaveProperty("release");
    const refused = pending.admitOrRefuse("10.0.0.1", 100);
    expect(refused).toMatchObject({ message: expect.stringContaining("more than 1 connections from 10.0.0.1"), shouldLog: true });
    expect(pending.admitOrRefuse("10.0.0.1", 500)).toMatchObject({ shouldLog: false });
    expect(pending.admitOrRefuse("10.0.0.1", 1100)).toMatchObject({ shouldLog: true });
    const release = (first as { release: () => void }).release;
    release();
    release();
    expect(pending.size).toBe(0);
    expect(pending.admitOrRefuse("10.0.0.1", 2000)).toHaveProperty("release");
    expect(pending.size).toBe(1);
  });

  it("refuses caps that are not positive integers", () => {
    expect(() => new PendingSockets({ perAddress: 0, total: 1 })).toThrow(TypeError);
    expect(() => new PendingSockets({ perAddress: 1, total: 1.5 })).toThrow(/total/);
  });
});
