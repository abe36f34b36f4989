/**
 * The one place a send to a socket may fail (a room's client, a device's link). A send
 * throws only when the socket is going away under it (a transport refusing a write to a
 * socket it has closed, or ws to one not open); the leave is then on its way, so the
 * caller goes on and counts the peer as not reached, or tells `onFailure`.
 *
 * @example
 *   if (!trySend(() => client.enqueueRaw(frame))) notReached++;
 */
export function trySend(send: () => void, onFailure?: (error: unknown) => void): boolean {
  try {
    send();
    return true;
  } catch (error) {
    onFailure?.(error);
    return false;
  }
}
