/**
 * Whether the process that started the adapter is still there. An adapter started as a
 * child (the demo's, beside `npm start`) must not outlive its parent: killed with
 * SIGKILL, the parent cannot stop it, and the next start would add a second adapter for
 * the same device.
 *
 * @example
 *   const stopWatching = watchParent(Number(process.env.TSUNAGI_ADAPTER_PARENT_PID), () => void shutdown("parent gone"));
 */

/** How often the parent is looked for, ms. */
const PARENT_POLL_MS = 250;

/**
 * Calls `gone` once when process `parentPid` no longer exists, or is no longer this
 * process's parent (it died and this process was adopted by another). Returns a function
 * that stops watching. The timer does not keep the process alive.
 */
export function watchParent(parentPid: number, gone: () => void, pollMs = PARENT_POLL_MS): () => void {
  const timer = setInterval(() => {
    if (parentAlive(parentPid)) return;
    clearInterval(timer);
    gone();
  }, pollMs);
  timer.unref();
  return () => clearInterval(timer);
}

/** Whether `parentPid` is alive and still this process's parent. */
export function parentAlive(parentPid: number): boolean {
  if (process.ppid !== parentPid) return false;
  try {
    process.kill(parentPid, 0);
    return true;
  } catch {
    return false;
  }
}
