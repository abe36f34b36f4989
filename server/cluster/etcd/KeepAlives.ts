/**
 * Lease keep-alives over one etcd LeaseKeepAlive stream, shared by every lease of the
 * session: each `send(id)` writes one request and resolves with the TTL etcd answers for
 * that lease (0 when etcd no longer knows it), in order per lease, as etcd answers a
 * stream's requests in the order it reads them.
 *
 * A keep-alive that gets no answer by its deadline fails, and so does every other one
 * waiting on the same stream: the stream is dropped (a member that lost its quorum, or a
 * connection that died silently), and the next send opens a new one, possibly to another
 * member.
 */
import type { IDuplexStream, ILeaseKeepAliveRequest, ILeaseKeepAliveResponse, LeaseClient } from "etcd3";

type Stream = IDuplexStream<ILeaseKeepAliveRequest, ILeaseKeepAliveResponse>;

interface Waiter {
  resolve: (ttlSeconds: number) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

/** A keep-alive that got no answer in time, or whose stream failed. */
export class KeepAliveError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "KeepAliveError";
  }
}

export class KeepAlives {
  private stream?: Stream;
  private opening?: Promise<Stream>;
  /** Keep-alives waiting for their answer, per lease id, oldest first. */
  private waiting = new Map<string, Waiter[]>();
  private closed = false;

  constructor(private readonly leases: LeaseClient) {}

  /** One keep-alive of lease `id`: the TTL etcd grants it from now, in seconds (0: the lease is gone). Rejects after `deadline` (epoch ms). */
  async send(id: string, deadline: number): Promise<number> {
    if (this.closed) throw new KeepAliveError("the etcd session is closed");
    const stream = await this.open(deadline);
    return new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => this.fail(stream, new KeepAliveError(`no keep-alive answer for lease ${id} by its deadline`)), Math.max(0, deadline - Date.now()));
      timer.unref();
      let queue = this.waiting.get(id);
      if (!queue) this.waiting.set(id, (queue = []));
      queue.push({ resolve, reject, timer });
      stream.write({ ID: id });
    });
  }

  close() {
    this.closed = true;
    if (this.stream) this.fail(this.stream, new KeepAliveError("the etcd session is closed"));
  }

  private async open(deadline: number): Promise<Stream> {
    if (this.stream) return this.stream;
    this.opening ??= (async () => {
      try {
        const opened = this.leases.leaseKeepAlive();
        const stream = await withDeadline(opened, deadline, "opening a keep-alive stream").catch((error) => {
          // A stream that opens after all is not left open.
          opened.then((late) => late.cancel(), () => {});
          throw error;
        });
        if (this.closed) { stream.cancel(); throw new KeepAliveError("the etcd session is closed"); }
        stream.on("data", (answer) => this.answer(answer));
        stream.on("error", (error) => this.fail(stream, new KeepAliveError(`keep-alive stream failed: ${error.message}`)));
        stream.on("end", () => this.fail(stream, new KeepAliveError("keep-alive stream ended")));
        this.stream = stream;
        return stream;
      } finally {
        this.opening = undefined;
      }
    })();
    return this.opening;
  }

  private answer(answer: ILeaseKeepAliveResponse) {
    const queue = this.waiting.get(answer.ID);
    const waiter = queue?.shift();
    if (!waiter) return; // answered after its deadline: already failed
    if (queue!.length === 0) this.waiting.delete(answer.ID);
    clearTimeout(waiter.timer);
    waiter.resolve(Number(answer.TTL));
  }

  /** Drops `stream` (if current) and fails every keep-alive waiting on it. */
  private fail(stream: Stream, error: Error) {
    if (this.stream !== stream) return;
    this.stream = undefined;
    const waiting = this.waiting;
    this.waiting = new Map();
    for (const queue of waiting.values()) {
      for (const waiter of queue) { clearTimeout(waiter.timer); waiter.reject(error); }
    }
    try { stream.cancel(); } catch { /* already closed */ }
  }
}

/** `promise`, or a KeepAliveError once `deadline` (epoch ms) passes. */
function withDeadline<T>(promise: Promise<T>, deadline: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new KeepAliveError(`${what}: no answer by the deadline`)), Math.max(0, deadline - Date.now()));
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}
