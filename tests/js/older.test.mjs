// static/older.js, paging the stored history, in Node's own test runner: `node --test tests/js/`.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  MAX_TOP_UP_PAGES,
  isLastPage,
  lowestSeq,
  olderButtonHidden,
  olderPage,
  olderUrl,
  topUp,
} from "../../static/older.js";

const STREAMER = "1337";

function event(seq) {
  return { id: `m${seq}`, seq, type: "channel.follow", broadcaster: { id: STREAMER } };
}

/** The seqs from `high` down, `n` of them, as events (a page of the API, highest first). */
function page(high, n) {
  return Array.from({ length: n }, (_, i) => event(high - i));
}

test("lowestSeq is where the next older page starts; none when nothing is shown", () => {
  assert.equal(lowestSeq([40, 31, 35, 12, 20]), 12);
  assert.equal(lowestSeq([]), null);
});

test("olderUrl encodes the login, the seq and the page size", () => {
  assert.equal(
    olderUrl("pixel paladin", 120, 10),
    "/api/streamers/pixel%20paladin/events?before=120&limit=10"
  );
});

describe("olderPage", () => {
  test("keeps this streamer's events below `before`, highest first", () => {
    const body = {
      events: [event(7), event(9), event(12), { ...event(8), broadcaster: { id: "x" } }, event(5)],
    };
    assert.deepEqual(
      olderPage(body, 10, STREAMER).map((e) => e.seq),
      [9, 7, 5]
    );
  });

  test("takes an answer without a list of events as an empty page", () => {
    assert.deepEqual(olderPage(null, 10, STREAMER), []);
    assert.deepEqual(olderPage({ events: "x" }, 10, STREAMER), []);
  });
});

test("a short page is the last one", () => {
  assert.equal(isLastPage(page(9, 9), 10), true);
  assert.equal(isLastPage([], 10), true);
  assert.equal(isLastPage(page(10, 10), 10), false);
});

test("the older button shows only while the live list is full and history has not ended", () => {
  assert.equal(olderButtonHidden(false, 10, 10), false);
  assert.equal(olderButtonHidden(false, 9, 10), true);
  assert.equal(olderButtonHidden(true, 10, 10), true);
});

describe("topUp", () => {
  /** A top-up over a store whose lowest seq is `lowest`, with `shown` as the list's items. */
  async function run({ initial, max, lowest = 1, shown }) {
    const asked = [];
    const placed = [];
    await topUp({
      initial,
      max,
      table: null,
      shown: () => shown(placed),
      fetchOlder: async (before) => {
        asked.push(before);
        const n = Math.max(0, Math.min(max, before - lowest));
        return page(before - 1, n);
      },
      place: (e) => placed.push(e.seq),
    });
    return { asked, placed };
  }

  test("a first paint shorter than the list asks nothing: there are no more", async () => {
    const { asked } = await run({ initial: page(5, 5).reverse(), max: 10, shown: () => [] });
    assert.deepEqual(asked, []);
  });

  test("a full list asks nothing", async () => {
    const initial = page(50, 10).reverse();
    const { asked } = await run({ initial, max: 10, shown: () => initial });
    assert.deepEqual(asked, []);
  });

  test("an empty first paint asks nothing", async () => {
    const { asked } = await run({ initial: [], max: 10, shown: () => [] });
    assert.deepEqual(asked, []);
  });

  test("a list short of items pages back from the oldest event reached", async () => {
    const initial = page(50, 10).reverse();
    // Grouped into fewer items than the list holds until 15 events are held.
    const { asked, placed } = await run({
      initial,
      max: 10,
      shown: (placed) => (placed.length >= 5 ? page(50, 10) : page(50, 3)),
    });
    assert.deepEqual(asked, [41]);
    assert.deepEqual(placed, [40, 39, 38, 37, 36, 35, 34, 33, 32, 31]);
  });

  test("stops at a short page: the store has nothing older", async () => {
    const initial = page(50, 10).reverse();
    const { asked, placed } = await run({ initial, max: 10, lowest: 25, shown: () => [] });
    assert.deepEqual(asked, [41, 31]);
    assert.equal(placed.at(-1), 25);
  });

  test(`reads at most ${MAX_TOP_UP_PAGES} pages`, async () => {
    const initial = page(100, 10).reverse();
    const { asked } = await run({ initial, max: 10, shown: () => [] });
    assert.equal(MAX_TOP_UP_PAGES, 5);
    assert.deepEqual(asked, [91, 81, 71, 61, 51]);
  });

  test("a failed page fails the top-up", async () => {
    const initial = page(50, 10).reverse();
    await assert.rejects(
      topUp({
        initial,
        max: 10,
        table: null,
        shown: () => [],
        fetchOlder: async () => {
          throw new Error("HTTP 500");
        },
        place: () => {},
      }),
      /HTTP 500/
    );
  });
});
