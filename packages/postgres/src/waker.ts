import { waitUntil } from '@trpc-longpoll/protocol';
import pg from 'pg';

interface WatchedTopic {
  /** Subscriptions of this process following the topic. */
  interest: number;
  /** Notifications received for the topic; a waiter compares it with what it saw before its read. */
  notes: number;
  waiters: Set<() => void>;
}

/**
 * Taken before a read: what the waker had heard by then. Waiting with it
 * returns at once if anything was heard since, so a notification that lands
 * between the read and the wait is never lost.
 */
export interface Ticket {
  topic: WatchedTopic | undefined;
  notes: number;
  /** Listening session the read was covered by; -1 while none was listening. */
  session: number;
}

export interface NotifyWakerOptions {
  /** Connection settings of the one listening connection. */
  connection: pg.ClientConfig;
  channels: { events: string; cluster: string };
  /** How often the listening connection proves it is alive (a dead peer can look idle for minutes); as long unanswered, it counts as dead. */
  heartbeatMs: number;
}

/**
 * One LISTEN connection per log, whatever the number of subscriptions: it
 * hears every publish of the schema (the payload is the topic) and wakes the
 * subscriptions of that topic, which then read the events themselves. It is
 * only a hint: a subscription re-reads at least every `recheckMs`, and every
 * waiter is woken when the connection is (re)established, since anything
 * may have been published while nobody listened.
 *
 * It also carries the cluster channel, with `pg_notify` on the same connection.
 */
export class NotifyWaker {
  private readonly topics = new Map<string, WatchedTopic>();
  private readonly clusterListeners = new Set<(message: string) => void>();
  private client: pg.Client | null = null;
  /** Counts established listening sessions; `listening` says whether the newest is still up. */
  private session = 0;
  private listening = false;
  private started = false;
  private closed = false;
  private readonly closing = new AbortController();
  private readonly connected = new Set<() => void>();

  constructor(private readonly opts: NotifyWakerOptions) {}

  /** Declares that a subscription follows `topic`; keeps its notifications counted until released. */
  watch(topic: string): () => void {
    let watched = this.topics.get(topic);
    if (!watched) this.topics.set(topic, (watched = { interest: 0, notes: 0, waiters: new Set() }));
    watched.interest++;
    this.start();
    let released = false;
    return () => {
      if (released) return;
      released = true;
      watched.interest--;
      if (watched.interest === 0 && this.topics.get(topic) === watched) this.topics.delete(topic);
    };
  }

  ticket(topic: string): Ticket {
    const watched = this.topics.get(topic);
    return { topic: watched, notes: watched?.notes ?? 0, session: this.listening ? this.session : -1 };
  }

  /** Resolves once the topic was notified after the ticket was taken, listening (re)started, the signal aborts, the waker closes, or `ms` passes. */
  wait(ticket: Ticket, signal: AbortSignal | undefined, ms: number): Promise<void> {
    const watched = ticket.topic;
    if (!watched || this.closed || signal?.aborted) return Promise.resolve();
    // Heard something since, or listening began after the read: read again. (While nobody listens, the reconnect wakes every waiter.)
    if (watched.notes !== ticket.notes || (this.listening && this.session !== ticket.session)) return Promise.resolve();
    return waitUntil({
      signal,
      ms,
      register: (wake) => {
        watched.waiters.add(wake);
        return () => watched.waiters.delete(wake);
      },
    });
  }

  /** Sends on the cluster channel over the listening connection; dropped (best effort) while it is down. */
  send(message: string): void {
    this.start();
    const client = this.listening ? this.client : null;
    client?.query('SELECT pg_notify($1, $2)', [this.opts.channels.cluster, message]).catch(() => {
      // Best effort: a lost cluster message only delays a cleanup.
    });
  }

  listen(onMessage: (message: string) => void): () => void {
    const listener = (message: string) => onMessage(message);
    this.clusterListeners.add(listener);
    this.start();
    return () => this.clusterListeners.delete(listener);
  }

  /** Resolves once the listening connection is up (for tests and for callers that must not miss the first message). */
  ready(): Promise<void> {
    this.start();
    if (this.listening || this.closed) return Promise.resolve();
    return waitUntil({
      signal: this.closing.signal,
      register: (wake) => {
        this.connected.add(wake);
        return () => this.connected.delete(wake);
      },
    });
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.closing.abort();
    this.wakeAll();
    void this.client?.end().catch(() => {});
  }

  private wakeAll(): void {
    for (const watched of this.topics.values()) {
      for (const wake of [...watched.waiters]) wake();
    }
  }

  private start(): void {
    if (this.started || this.closed) return;
    this.started = true;
    void this.run();
  }

  /** Keeps one listening connection up until close, reconnecting with backoff. */
  private async run(): Promise<void> {
    let failures = 0;
    while (!this.closed) {
      // A host that swallows packets would hold `connect()` forever without a timeout of its own.
      const client = new pg.Client({ connectionTimeoutMillis: 10_000, ...this.opts.connection, keepAlive: true, keepAliveInitialDelayMillis: 10_000 });
      let lost = () => {};
      const ended = new Promise<void>((resolve) => {
        lost = resolve;
        client.once('end', resolve);
        // A broken connection reports here; 'end' follows, or the failed connect below covers it.
        client.on('error', () => resolve());
      });
      try {
        await client.connect();
        const { events, cluster } = this.opts.channels;
        await client.query(`LISTEN "${events}"; LISTEN "${cluster}"`);
      } catch {
        void client.end().catch(() => {});
        failures++;
        await waitUntil({ ms: Math.min(2_000, 50 * 2 ** failures), signal: this.closing.signal });
        continue;
      }
      if (this.closed) {
        void client.end().catch(() => {});
        return;
      }
      failures = 0;
      client.on('notification', (note) => this.onNotification(note.channel, note.payload ?? ''));
      this.client = client;
      this.session++;
      this.listening = true;
      // Anything published while nobody listened went unheard: every waiter reads again.
      this.wakeAll();
      for (const wake of [...this.connected]) wake();
      const heartbeat = setInterval(() => void this.heartbeat(client).catch(lost), this.opts.heartbeatMs);
      await ended;
      clearInterval(heartbeat);
      this.listening = false;
      this.client = null;
      void client.end().catch(() => {});
      if (!this.closed) await waitUntil({ ms: 50, signal: this.closing.signal });
    }
  }

  /** Rejects if the listening connection does not answer in time: the loop then drops it and connects again. */
  private async heartbeat(client: pg.Client): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error('The LISTEN connection did not answer')), this.opts.heartbeatMs);
    });
    try {
      await Promise.race([client.query('SELECT 1'), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  private onNotification(channel: string, payload: string): void {
    if (channel === this.opts.channels.cluster) {
      for (const listener of [...this.clusterListeners]) {
        try {
          listener(payload);
        } catch {
          // One listener's failure is not the channel's.
        }
      }
      return;
    }
    // An empty payload (a topic too long for NOTIFY) wakes every topic.
    const targets = payload === '' ? [...this.topics.values()] : [this.topics.get(payload)];
    for (const watched of targets) {
      if (!watched) continue;
      watched.notes++;
      for (const wake of [...watched.waiters]) wake();
    }
  }
}
