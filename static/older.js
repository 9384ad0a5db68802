/* "Show older events" and the first paint's top-up as pure decisions: where the next page of
 * history starts, what a page from the API holds, when the history has ended, and how far back
 * the list looks to fill itself. No DOM: static/page/history.js applies them, and
 * tests/js/older.test.mjs runs them in Node (the network passed in as a function).
 */
import { needsOlder, oldestFirst } from "./feed.js";

// The first paint's top-up reads at most this many pages before giving up.
export const MAX_TOP_UP_PAGES = 5;

/** The lowest seq shown (the `before` of the next older page), or null when none is. */
export function lowestSeq(seqs) {
  return seqs.length ? Math.min(...seqs) : null;
}

/** The API address of the `limit` stored events just below `before`. */
export function olderUrl(login, before, limit) {
  return (
    `/api/streamers/${encodeURIComponent(login)}/events` +
    `?before=${encodeURIComponent(before)}&limit=${encodeURIComponent(limit)}`
  );
}

/** The events of an API answer below `before`, this streamer's only, highest first. */
export function olderPage(body, before, streamerId) {
  return oldestFirst(body && body.events, streamerId)
    .filter((event) => event.seq < before)
    .reverse();
}

/** Whether a page this short means the store has nothing older. */
export function isLastPage(events, max) {
  return events.length < max;
}

/** Whether "Show older events" is hidden: history ended, or the live list is not full yet. */
export function olderButtonHidden(ended, liveCount, max) {
  return ended || liveCount < max;
}

/**
 * The first paint's top-up. The server renders its latest `max` events; a burst among them is
 * one item, and a community gift may lie just below its recipients' subs: look further back
 * (at most MAX_TOP_UP_PAGES pages) until the list has `max` items and no gifted sub waits for
 * its gift. `initial` is the rendered events, oldest first; `shown()` the events the list
 * holds; `fetchOlder(before)` a page below `before`, highest first; `place(event)` adds one.
 */
export async function topUp({ initial, max, table, shown, fetchOlder, place }) {
  let reached = initial.length ? initial[0] : null; // the oldest looked at
  let end = initial.length < max; // the server had no more
  for (let page = 0; page < MAX_TOP_UP_PAGES && !end && reached; page += 1) {
    if (!needsOlder(shown(), table, reached, max)) return;
    const events = await fetchOlder(reached.seq);
    for (const event of events) place(event);
    end = isLastPage(events, max);
    if (events.length) reached = events[events.length - 1];
  }
}
