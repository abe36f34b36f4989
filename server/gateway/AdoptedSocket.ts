/**
 * The seam through which another listener hands the gateway a device socket it accepted
 * (CertificateListener, whose TLS the gateway's uWS listener cannot do): the listener
 * gives DeviceGateway.adopt() a transport and reports the socket's events to what adopt()
 * answers. The gateway then runs the same handshake, limits and links as for its own.
 *
 * @example
 *   const events = gateway.adopt({ send, end, bufferedAmount }, remote, presented);
 *   ws.on("message", (data) => events.received(data));
 *   ws.on("close", (code) => events.closed(code));
 */

/** A socket another listener accepted, as adopt() takes it. */
export interface AdoptedTransport {
  /** Sends one binary frame; uWS's result: 1 sent, 0 queued past the backpressure mark, 2 dropped. */
  send(bytes: Uint8Array): number;
  end(code: number, reason: string): void;
  bufferedAmount(): number;
}

/** What the adopting listener tells the gateway of its socket. */
export interface AdoptedEvents {
  received(bytes: Uint8Array): void;
  drained(): void;
  closed(code: number): void;
}
