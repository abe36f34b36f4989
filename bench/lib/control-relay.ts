/**
 * Bench child: the control bench's baseline, the least a server between operators and
 * devices can do. A bare uWebSockets.js app on 127.0.0.1 and an ephemeral port: a device
 * connects at `/device?id=<deviceId>`, its operator at `/op?id=<deviceId>`, and every
 * binary frame of one is forwarded, verbatim, to the other. No decoding, no checks, no
 * lease, no rooms: what the region node adds on top of this is what the bench measures.
 * No argument. Ready data: RelayReady. Calls: startWindow / stopWindow (PauseFigures);
 * the parent reads its CPU time from /proc.
 */
import uWS from "uWebSockets.js";
import { relayDevicePath, relayOperatorPath, type RelayReady } from "./control-protocol.ts";
import { pauseWindowMethods } from "./measure.ts";
import { serveParent } from "./parent-channel.ts";

interface Peer {
  side: "device" | "operator";
  deviceId: string;
}

type Socket = uWS.WebSocket<Peer>;

/** The connected socket of each side, by device id. */
const devices = new Map<string, Socket>();
const operators = new Map<string, Socket>();
const sideMap = (side: Peer["side"]) => (side === "device" ? devices : operators);
const otherSide = (side: Peer["side"]) => (side === "device" ? operators : devices);

const app = uWS.App();
app.ws<Peer>("/*", {
  // As the device gateway sets its sockets up (server/gateway/DeviceGateway.ts).
  maxPayloadLength: 64 * 1024,
  idleTimeout: 16,
  sendPingsAutomatically: true,
  maxBackpressure: 1024 * 1024,
  closeOnBackpressureLimit: 0,
  upgrade: (res, req, context) => {
    const url = req.getUrl();
    const deviceId = req.getQuery("id") ?? "";
    const side = url === relayDevicePath ? "device" : url === relayOperatorPath ? "operator" : undefined;
    if (side === undefined || deviceId === "") {
      res.writeStatus("404 Not Found").end(`relay: connect to ${relayDevicePath}?id=<device> or ${relayOperatorPath}?id=<device>`);
      return;
    }
    const peer: Peer = { side, deviceId };
    res.upgrade(peer, req.getHeader("sec-websocket-key"), req.getHeader("sec-websocket-protocol"), req.getHeader("sec-websocket-extensions"), context);
  },
  open: (ws) => {
    const { side, deviceId } = ws.getUserData();
    sideMap(side).set(deviceId, ws);
  },
  message: (ws, message, isBinary) => {
    const { side, deviceId } = ws.getUserData();
    // Nobody on the other side yet: dropped, as a link to an offline device would.
    otherSide(side).get(deviceId)?.send(message, isBinary);
  },
  close: (ws) => {
    const { side, deviceId } = ws.getUserData();
    if (sideMap(side).get(deviceId) === ws) sideMap(side).delete(deviceId);
  },
});

const port = await new Promise<number>((resolve, reject) => {
  app.listen("127.0.0.1", 0, (listenSocket) => {
    if (!listenSocket) { reject(new Error("relay cannot listen on 127.0.0.1")); return; }
    resolve(uWS.us_socket_local_port(listenSocket as unknown as uWS.us_socket));
  });
});

const ready: RelayReady = { port };
serveParent(pauseWindowMethods(), ready);
