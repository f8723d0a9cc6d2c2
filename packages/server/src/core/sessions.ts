import type { Ledger, Refusal } from './budgets';
import { Session, type HeldPoll } from './session';

/** How long a client whose poll was refused keeps its runs: long enough for a poll racing the refusal to arrive. */
const REFUSAL_GRACE_MS = 1_000;

/**
 * Every client the core keeps state for, by session key (identity and client
 * id), and when that state goes: idle expiry, a refusal's grace, a farewell,
 * or the core closing.
 */
export class SessionTable {
  private readonly sessions = new Map<string, Session>();
  /** Sessions by client id, so a refused poll reaches its client's runs without a scan. */
  private readonly byClient = new Map<string, Set<Session>>();
  /** Every held poll, including one whose session was dropped while it began holding. */
  private readonly heldPolls = new Set<HeldPoll>();
  private readonly sweeper: ReturnType<typeof setInterval>;
  /** Clients refused in the last grace, and the one timer that expires them: a flood of refusals costs one timer. */
  private readonly refusedClients = new Set<string>();
  private refusalTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly ledger: Ledger,
    private readonly idleTimeoutMs: number,
  ) {
    this.sweeper = setInterval(() => this.sweep(), Math.max(50, Math.min(idleTimeoutMs / 4, 5_000)));
    this.sweeper.unref?.();
  }

  /** Polls held right now. */
  get heldCount(): number {
    return this.heldPolls.size;
  }

  get size(): number {
    return this.sessions.size;
  }

  /** Every session, for the stats snapshot. */
  all(): Iterable<Session> {
    return this.sessions.values();
  }

  get(key: string): Session | undefined {
    return this.sessions.get(key);
  }

  /**
   * The session's client was served by another instance with poll number
   * `poll`: if this instance has only seen older polls of it, its runs stop
   * and its state goes (an older poll still held here was abandoned by the
   * client, which keeps one poll in flight). True when a session went.
   */
  movedAway(key: string, poll: number): boolean {
    const session = this.sessions.get(key);
    if (!session || session.newestPoll >= poll) return false;
    session.held?.release();
    this.drop(key, session);
    return true;
  }

  /** The session at `key`, made if it is new and the session budgets allow it. */
  open(key: string, identity: string, client: string): Session | Refusal {
    const existing = this.sessions.get(key);
    if (existing) return existing;
    const refusal = this.ledger.admitSession(identity);
    if (refusal) return refusal;
    const session = new Session(key, identity, client, this.ledger, this.heldPolls);
    this.sessions.set(key, session);
    let siblings = this.byClient.get(client);
    if (!siblings) this.byClient.set(client, (siblings = new Set()));
    siblings.add(session);
    return session;
  }

  drop(key: string, session: Session): void {
    if (this.sessions.get(key) !== session) return;
    this.sessions.delete(key);
    const siblings = this.byClient.get(session.client);
    siblings?.delete(session);
    if (siblings?.size === 0) this.byClient.delete(session.client);
    session.close();
  }

  /**
   * A client refused (revoked credentials, a throwing `identify`) can no longer read its runs:
   * they stop within the grace, unless a poll of the same client is served meanwhile (the
   * refusal was a forgery with a leaked client id, or a race).
   */
  refuse(client: string): void {
    const siblings = this.byClient.get(client);
    if (!siblings) return;
    const now = Date.now();
    for (const session of siblings) if (!session.held) session.refusedAt = now;
    this.refusedClients.add(client);
    this.scheduleRefusals(REFUSAL_GRACE_MS);
  }

  private scheduleRefusals(ms: number): void {
    if (this.refusalTimer) return;
    this.refusalTimer = setTimeout(() => this.expireRefused(), ms + 10);
    this.refusalTimer.unref?.();
  }

  /** Looks only at the refused clients' sessions; one refused too recently keeps the timer going. */
  private expireRefused(): void {
    this.refusalTimer = null;
    const now = Date.now();
    let soonest = Infinity;
    for (const client of [...this.refusedClients]) {
      let waiting = false;
      for (const session of [...(this.byClient.get(client) ?? [])]) {
        if (this.expired(session, now)) this.drop(session.key, session);
        else if (session.refusedAt > 0) {
          waiting = true;
          soonest = Math.min(soonest, session.refusedAt + REFUSAL_GRACE_MS - now);
        }
      }
      if (!waiting) this.refusedClients.delete(client);
    }
    if (soonest < Infinity) this.scheduleRefusals(Math.max(0, soonest));
  }

  /** Stops expiring sessions and answers every held poll now. */
  releaseAll(): void {
    clearInterval(this.sweeper);
    if (this.refusalTimer) clearTimeout(this.refusalTimer);
    this.refusalTimer = null;
    for (const held of [...this.heldPolls]) held.release();
  }

  dropAll(): void {
    for (const [key, session] of [...this.sessions]) this.drop(key, session);
  }

  private sweep(): void {
    const now = Date.now();
    for (const [key, session] of this.sessions) if (this.expired(session, now)) this.drop(key, session);
  }

  private expired(session: Session, now: number): boolean {
    if (session.held) return false;
    return now - session.lastSeen > this.idleTimeoutMs || (session.refusedAt > 0 && now - session.refusedAt >= REFUSAL_GRACE_MS);
  }
}
