import { afterEach, describe, expect, it, vi } from "vitest";
import { BodyReader } from "../../../../server/http/BodyReader.ts";

describe("BodyReader", () => {
  afterEach(() => { vi.restoreAllMocks(); });

  it("joins 2 MiB sent in 1 KiB pieces once, at the end, never per chunk", () => {
    const concat = vi.spyOn(Buffer, "concat");
    const reader = new BodyReader(4 * 1024 * 1024);
    const piece = new Uint8Array(1024);
    for (let i = 0; i < 2048; i++) {
      piece.fill(i % 251);
      expect(reader.push(piece)).toBe(true);
    }
    expect(concat).not.toHaveBeenCalled();
    const body = reader.finish();
    expect(concat).toHaveBeenCalledTimes(1);
    expect(body.byteLength).toBe(2 * 1024 * 1024);
    // Each chunk was copied as it came: the caller's buffer was reused for every piece.
    expect(body[0]).toBe(0);
    expect(body[1024 * 2047]).toBe(2047 % 251);
  });

  it("counts every chunk's bytes and refuses the one that passes the limit, whatever was declared", () => {
    const reader = new BodyReader(10);
    expect(reader.push(new Uint8Array(6))).toBe(true);
    expect(reader.push(new Uint8Array(4))).toBe(true);
    expect(reader.push(new Uint8Array(1))).toBe(false);
    expect(reader.bytes).toBe(11);
  });

  it("gives an empty body for no chunks, and a single chunk as it is", () => {
    expect(new BodyReader(0).finish().byteLength).toBe(0);
    const reader = new BodyReader(100);
    reader.push(new TextEncoder().encode("{}"));
    expect(reader.finish().toString()).toBe("{}");
  });
});
