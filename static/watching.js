/* The socket's decisions as pure functions: what a `watch` answer means (go live, retry after
 * a back-off, or stop), and which seqs a `fill` asks the store for when a hole in the live
 * seqs stays open. No DOM, no timers, no network: static/page/socket.js applies what these
 * decide, and tests/js/watching.test.mjs runs them in Node.
 */

// A watch that failed in a way worth retrying waits 1 s, 2 s, 4 s… and never more than this.
export const MAX_RETRY_DELAY_MS = 10000;

/**
 * What a watch's answer means: `{ok: true}` for an ack with events to apply, else
 * `{ok: false, retry, reason}`, `retry` when no answer came in time (`error`) or the server
 * asks for it (`ack.retry`), `reason` the server's words or "SEV did not answer".
 */
export function watchOutcome(error, ack) {
  if (!error && ack && !ack.error) return { ok: true };
  return {
    ok: false,
    retry: Boolean(error) || Boolean(ack && ack.retry),
    reason: ack && ack.error ? String(ack.error) : "SEV did not answer",
  };
}

/** How long to wait before the next watch after `failures` failed ones in a row (≥ 1). */
export function retryDelay(failures) {
  return Math.min(1000 * Math.pow(2, failures - 1), MAX_RETRY_DELAY_MS);
}

/** The `after` of the first watch: the highest seq the server rendered, or null for none. */
export function initialMark(events) {
  let mark = null;
  for (const event of events) {
    if (mark === null || event.seq > mark) mark = event.seq;
  }
  return mark;
}

/**
 * The seqs a `fill` asks for, strictly between `after` (the contiguous mark) and `before`: up
 * to the lowest seq waiting above the mark, and at most `limit` (a catch-up's size) of them.
 * Once answered, every seq below `before` is known (the store never shows N+1 before N).
 */
export function holeRange(mark, lowestAhead, limit) {
  return { after: mark, before: Math.min(lowestAhead, mark + limit + 1) };
}

/** Whether a `fill` was answered with events (else it is asked again after a grace). */
export function fillAnswered(error, ack) {
  return !(error || !ack || ack.error || !Array.isArray(ack.events));
}
