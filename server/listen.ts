/**
 * Every uWS listener of the node (the client port, the device gateway) binds its port
 * exclusively. uWS's default sets SO_REUSEPORT: a second process on a taken port starts
 * happily and the kernel splits the connections between the two, so a node started on
 * another's port (two regions on one machine, a gateway port given twice) would serve
 * half of someone else's clients. Exclusive, the second bind fails and the node says so.
 *
 * @example
 *   const socket = await listenExclusive(app, "127.0.0.1", 0, "device gateway");
 *   const port = uWS.us_socket_local_port(socket as unknown as uWS.us_socket);
 */
import uWS from "uWebSockets.js";

/** The binary exports the flag at the top level; the typings only as an enum member. */
const LIBUS_LISTEN_EXCLUSIVE_PORT: number = (uWS as unknown as { LIBUS_LISTEN_EXCLUSIVE_PORT: number }).LIBUS_LISTEN_EXCLUSIVE_PORT;

/** Listens on host:port without SO_REUSEPORT; rejects naming `what` and the address when the port is taken or not available. */
export function listenExclusive(app: uWS.TemplatedApp, host: string, port: number, what: string): Promise<uWS.us_listen_socket> {
  // The typings miss the (host, port, options, callback) form the binary has.
  const listen = app.listen as unknown as (host: string, port: number, options: number, callback: (socket: uWS.us_listen_socket | false) => void) => void;
  return new Promise((resolve, reject) => {
    listen.call(app, host, port, LIBUS_LISTEN_EXCLUSIVE_PORT, (socket) => {
      if (socket) resolve(socket);
      else reject(new Error(`${what} cannot listen on ${host}:${port} (address in use or not available)`));
    });
  });
}

/** The port a listen socket is bound to (the chosen one for port 0). */
export function listenPort(socket: uWS.us_listen_socket): number {
  return uWS.us_socket_local_port(socket as unknown as uWS.us_socket);
}
