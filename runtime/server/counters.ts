/**
 * Running totals a server keeps for metrics. Plain numbers bumped on the hot path; a metrics
 * adapter reads them when scraped, so counting costs an addition, not a callback.
 */
export interface ServerCounters {
  messagesIn: number;
  bytesIn: number;
  messagesOut: number;
  bytesOut: number;
  /** Frames sent again after a resume. */
  retransmits: number;
  /** Exactly-once requests answered from the idempotency window instead of running. */
  dedupeHits: number;
  resumes: number;
  /** Sessions taken over from another node (a client resumed here) and handed to one. */
  sessionsAdopted: number;
  sessionsHandedOver: number;
  /** Sessions of a dead node continued here from the session store. */
  sessionsRestored: number;
  /** Resume attempts that got a new session, by reason. */
  resumeFailures: Record<string, number>;
  /** Channel frames not delivered to a slow subscriber, by overflow policy. */
  drops: Record<string, number>;
  /** Connections closed, by close code. */
  closeCodes: Record<string, number>;
  /** Requests refused by a limit, by limit name. */
  limitHits: Record<string, number>;
  authFailures: number;
  /** Session state changes outside PROTOCOL.md 8.7's table: a bug, by "from->to". Normally empty. */
  stateViolations: Record<string, number>;
}

export function createCounters(): ServerCounters {
  return {
    messagesIn: 0,
    bytesIn: 0,
    messagesOut: 0,
    bytesOut: 0,
    retransmits: 0,
    dedupeHits: 0,
    resumes: 0,
    sessionsAdopted: 0,
    sessionsHandedOver: 0,
    sessionsRestored: 0,
    resumeFailures: {},
    drops: {},
    closeCodes: {},
    limitHits: {},
    authFailures: 0,
    stateViolations: {},
  };
}

export function bump(map: Record<string, number>, key: string | number, by = 1): void {
  map[key] = (map[key] ?? 0) + by;
}

/** Observations that carry more than a count: call latency, for a histogram. */
export interface ServerObserver {
  /** A call finished (reply or error) after `durationMs`; `code` is "ok" or the error code name. */
  callFinished?(method: string, code: string, durationMs: number): void;
}
