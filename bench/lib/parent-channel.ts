/**
 * The child side of a bench child process: answers the parent's calls over the IPC
 * channel. The parent side is `BenchChild` in child-process.ts.
 */

/** A call from the parent: run `method` (with `argument`, if any) and reply with the same `id`. */
export interface ParentCall {
  id: number;
  method: string;
  argument?: unknown;
}

export type ChildMessage =
  | { kind: "ready"; data: unknown }
  | { kind: "reply"; id: number; result: unknown }
  | { kind: "reply"; id: number; error: string };

export type ChildMethods = Record<string, (argument?: any) => unknown>;

/** Serves `methods` to the parent, then tells it this child is ready, with `readyData`. */
export function serveParent(methods: ChildMethods, readyData: unknown = null): void {
  const send = process.send?.bind(process);
  if (send === undefined) {
    throw new Error("this script is a bench child: start it through bench/run.ts (it needs an IPC channel)");
  }
  const reply = (message: ChildMessage) => send(message);

  process.on("message", async ({ id, method, argument }: ParentCall) => {
    try {
      const handler = methods[method];
      if (handler === undefined) throw new Error(`unknown method "${method}"`);
      reply({ kind: "reply", id, result: await handler(argument) });
    } catch (error) {
      reply({ kind: "reply", id, error: error instanceof Error ? error.message : String(error) });
    }
  });
  // The parent owns this process: once its channel closes (even if it was SIGKILLed), stop.
  process.on("disconnect", () => process.exit(0));

  reply({ kind: "ready", data: readyData });
}
