import type { ClusterChannel } from '../log/types';

/*
 * What instances behind one balancer tell each other over the `cluster`
 * channel (docs/protocol.md §5, "Several instances"):
 * - `moved`: a client's poll was served by `from`, so any other instance
 *   holding state for the same session, from an older poll, drops it;
 * - `hello`: `from` is alive. An instance greets at start (and again 0.25,
 *   1 and 3 s later), every `HELLO_EVERY_MS`, and greets back a peer it did
 *   not know, so a client whose `prev` names a live peer was moved by the
 *   balancer, while one that names an unknown instance outlived a restart.
 * Messages come from the operator's own infrastructure, but are still read
 * defensively: a malformed one is ignored.
 */

/** A session's client polled instance `from` with poll number `poll` (or said farewell there). */
export interface MoveNotice {
  session: string;
  poll: number;
  from: string;
}

const MOVED = 'trpc-longpoll/moved';
const HELLO = 'trpc-longpoll/hello';
const HELLO_EVERY_MS = 15_000;
const STARTUP_HELLOS_MS = [250, 1_000, 3_000];
/** A peer unheard for this long is taken for gone. */
const PEER_TTL_MS = 4 * HELLO_EVERY_MS;

type Message = ({ kind: typeof MOVED } & MoveNotice) | { kind: typeof HELLO; from: string };

function decode(text: unknown): Message | null {
  if (typeof text !== 'string' || text.length > 4_096) return null;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return null;
  }
  if (typeof value !== 'object' || value === null) return null;
  const { kind, session, poll, from } = value as Record<string, unknown>;
  if (typeof from !== 'string') return null;
  if (kind === HELLO) return { kind, from };
  if (kind !== MOVED || typeof session !== 'string' || typeof poll !== 'number' || !Number.isSafeInteger(poll)) return null;
  return { kind, session, poll, from };
}

/** This instance's end of the cluster channel. */
export class ClusterLink {
  private readonly peers = new Map<string, number>();
  private readonly stopListening: () => void;
  private readonly timer: ReturnType<typeof setInterval>;
  private readonly startup: ReturnType<typeof setTimeout>[] = [];

  constructor(
    private readonly channel: ClusterChannel,
    private readonly self: string,
    private readonly onMove: (notice: MoveNotice) => void,
  ) {
    this.stopListening = channel.listen((text) => this.receive(text));
    this.timer = setInterval(() => this.hello(), HELLO_EVERY_MS);
    this.timer.unref?.();
    // Instances that start together may greet before the others listen (pub/sub keeps nothing): greet again soon.
    this.hello();
    for (const ms of STARTUP_HELLOS_MS) {
      const timer = setTimeout(() => this.hello(), ms);
      timer.unref?.();
      this.startup.push(timer);
    }
  }

  /** Whether `instance` is another instance heard from lately. */
  isPeer(instance: string): boolean {
    const heard = this.peers.get(instance);
    return heard !== undefined && Date.now() - heard < PEER_TTL_MS;
  }

  moved(notice: Omit<MoveNotice, 'from'>): void {
    this.channel.send(JSON.stringify({ kind: MOVED, ...notice, from: this.self }));
  }

  close(): void {
    clearInterval(this.timer);
    for (const timer of this.startup) clearTimeout(timer);
    this.stopListening();
  }

  private hello(): void {
    this.channel.send(JSON.stringify({ kind: HELLO, from: this.self }));
  }

  private receive(text: string): void {
    const message = decode(text);
    if (!message || message.from === this.self) return;
    const known = this.isPeer(message.from);
    this.peers.set(message.from, Date.now());
    if (this.peers.size > 1_024) this.forgetSilent();
    if (message.kind === HELLO && !known) this.hello();
    if (message.kind === MOVED) this.onMove(message);
  }

  private forgetSilent(): void {
    const now = Date.now();
    for (const [peer, heard] of this.peers) if (now - heard >= PEER_TTL_MS) this.peers.delete(peer);
  }
}
