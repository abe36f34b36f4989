import { describe, expect, it } from "vitest";
import { clientAddress, isLoopbackAddress, PEER_ADDRESS_HEADER, peerAddress } from "../../../../server/http/peer.ts";

function request(peer: string, forwardedFor?: string): Request {
  const headers: Record<string, string> = { [PEER_ADDRESS_HEADER]: peer };
  if (forwardedFor !== undefined) headers["x-forwarded-for"] = forwardedFor;
  return new Request("http://node/matchmake/create/expo", { headers });
}

describe("peer addresses", () => {
  it("reads the transport's stamp, IPv4-mapped addresses as IPv4", () => {
    expect(peerAddress(request("::ffff:10.0.0.7"))).toBe("10.0.0.7");
    expect(peerAddress(new Request("http://node/"))).toBe("");
  });

  it("knows loopback in its spellings and nothing else", () => {
    for (const address of ["127.0.0.1", "127.8.9.10", "::1", "0000:0000:0000:0000:0000:0000:0000:0001", "::ffff:127.0.0.1"]) {
      expect(isLoopbackAddress(address), address).toBe(true);
    }
    for (const address of ["10.0.0.1", "128.0.0.1", "::2", "localhost", "", "0000:0000:0000:0000:0000:0000:0000:0011"]) {
      expect(isLoopbackAddress(address), address).toBe(false);
    }
  });

  it("ignores X-Forwarded-For unless the peer is a trusted proxy", () => {
    expect(clientAddress(request("203.0.113.9", "1.2.3.4"), [])).toBe("203.0.113.9");
    expect(clientAddress(request("203.0.113.9", "1.2.3.4"), ["10.0.0.2"])).toBe("203.0.113.9");
  });

  it("behind a trusted proxy takes the rightmost untrusted hop, not the client's own claims", () => {
    const proxies = ["10.0.0.2", "10.0.0.3"];
    expect(clientAddress(request("10.0.0.2", "6.6.6.6, 198.51.100.4, 10.0.0.3"), proxies)).toBe("198.51.100.4");
    expect(clientAddress(request("10.0.0.2", ""), proxies)).toBe("10.0.0.2");
  });
});
