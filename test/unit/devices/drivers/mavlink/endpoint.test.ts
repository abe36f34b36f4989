/**
 * parseMavlinkEndpoint: the udpin / udpout forms, IPv6 in brackets, and a TypeError that
 * says what is wrong for each kind of bad address.
 */
import { describe, expect, it } from "vitest";
import { parseMavlinkEndpoint } from "../../../../../devices/drivers/mavlink/endpoint.ts";

function failure(text: string): TypeError {
  try {
    parseMavlinkEndpoint(text);
  } catch (error) {
    expect(error).toBeInstanceOf(TypeError);
    return error as TypeError;
  }
  throw new Error(`${text} was accepted`);
}

describe("parseMavlinkEndpoint", () => {
  it("parses udpin and udpout with an IPv4 address", () => {
    expect(parseMavlinkEndpoint("udpin:0.0.0.0:14550")).toEqual({ mode: "udpin", host: "0.0.0.0", port: 14550 });
    expect(parseMavlinkEndpoint("udpout:127.0.0.1:14555")).toEqual({ mode: "udpout", host: "127.0.0.1", port: 14555 });
    expect(parseMavlinkEndpoint("udpout:127.0.0.1:65535").port).toBe(65535);
  });

  it("parses an IPv6 address in brackets, without them", () => {
    expect(parseMavlinkEndpoint("udpout:[::1]:14555")).toEqual({ mode: "udpout", host: "::1", port: 14555 });
    expect(parseMavlinkEndpoint("udpin:[::]:14550")).toEqual({ mode: "udpin", host: "::", port: 14550 });
  });

  it("refuses an address without a mode, naming the forms accepted", () => {
    for (const text of ["127.0.0.1:14550", "udp:127.0.0.1:14550", "tcp:127.0.0.1:5760", ""]) {
      expect(failure(text).message).toMatch(/udpin:HOST:PORT.*udpout:HOST:PORT/);
    }
  });

  it("refuses a host name instead of an IP address, naming it", () => {
    const error = failure("udpout:localhost:14555");
    expect(error.message).toMatch(/localhost is not an IP address/);
    expect(failure("udpin:vehicle.local:14550").message).toMatch(/vehicle\.local is not an IP address/);
  });

  it("refuses port 0 on udpout (there is nowhere to send), but binds any port on udpin", () => {
    expect(failure("udpout:127.0.0.1:0").message).toMatch(/port 0 is out of range/);
    expect(parseMavlinkEndpoint("udpin:127.0.0.1:0")).toEqual({ mode: "udpin", host: "127.0.0.1", port: 0 });
  });

  it("refuses a port above 65535", () => {
    expect(failure("udpout:127.0.0.1:65536").message).toMatch(/port 65536 is out of range/);
    expect(failure("udpin:127.0.0.1:99999").message).toMatch(/port 99999 is out of range/);
    expect(failure("udpout:127.0.0.1:145500").message).toMatch(/is not udpin:HOST:PORT/);
  });
});
