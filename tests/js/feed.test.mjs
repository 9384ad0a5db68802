// static/feed.js, the streamer page's pure part, in Node's own test runner: `node --test tests/js/`.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import {
  MAX_EVENTS,
  alertsFor,
  notificationOf,
  readAlerts,
  writeAlerts,
  ResumePoint,
  announcement,
  badgesOf,
  belowMinimum,
  minimumsSet,
  readMinimums,
  writeMinimums,
  catchUpNote,
  confirmedByAck,
  displayOf,
  groupEvents,
  isEvent,
  listView,
  needsOlder,
  recipientsOf,
  oldestFirst,
  placement,
  relativeText,
  streamAfter,
  readHidden,
  summaryParts,
  twitchUrl,
  writeHidden,
} from "../../static/feed.js";

const STREAMER = "1337";

function event(seq, extra = {}) {
  return { id: `m${seq}`, seq, summary: `event ${seq}`, broadcaster: { id: STREAMER }, ...extra };
}

/** Place seqs one after another as the page does; the seqs shown, highest first. */
function placeAll(seqs, max = MAX_EVENTS, shown = []) {
  let order = shown;
  for (const seq of seqs) {
    const where = placement(order, seq, max);
    if (where !== null) order = where.order;
  }
  return order;
}

describe("isEvent", () => {
  test("accepts an event of this streamer, or one that names no streamer", () => {
    assert.equal(isEvent(event(1), STREAMER), true);
    assert.equal(isEvent({ seq: 1 }, STREAMER), true);
    assert.equal(isEvent(event(1), null), true);
  });

  for (const [name, value] of [
    ["null", null],
    ["a number", 5],
    ["a string seq", { seq: "5" }],
    ["an infinite seq", { seq: Infinity }],
    ["NaN", { seq: NaN }],
    ["another streamer's event", event(1, { broadcaster: { id: "elsewhere" } })],
  ]) {
    test(`refuses ${name}`, () => assert.equal(isEvent(value, STREAMER), false));
  }
});

describe("oldestFirst", () => {
  test("keeps this streamer's events, oldest first", () => {
    const events = [event(3), event(1), event(9, { broadcaster: { id: "x" } }), null, event(2)];
    assert.deepEqual(
      oldestFirst(events, STREAMER).map((e) => e.seq),
      [1, 2, 3]
    );
  });

  test("takes anything that is not a list as no events", () => {
    assert.deepEqual(oldestFirst(undefined, STREAMER), []);
    assert.deepEqual(oldestFirst({ seq: 1 }, STREAMER), []);
  });
});

describe("placement", () => {
  test("places by seq, not by arrival", () => {
    assert.deepEqual(placeAll([5, 3, 4, 1, 2]), [5, 4, 3, 2, 1]);
  });

  test("says where the new seq goes and what falls off", () => {
    assert.deepEqual(placement([9, 7, 5], 8, 3), { index: 1, order: [9, 8, 7], dropped: [5] });
    assert.deepEqual(placement([9, 7], 1, 3), { index: 2, order: [9, 7, 1], dropped: [] });
    assert.deepEqual(placement([], 4, 3), { index: 0, order: [4], dropped: [] });
  });

  test("drops a seq already shown", () => {
    assert.equal(placement([5, 4, 3], 4), null);
    assert.deepEqual(placeAll([3, 5, 3, 4, 5, 3]), [5, 4, 3]);
  });

  test("keeps the ten newest, and an older one does not come back", () => {
    const order = placeAll(Array.from({ length: 17 }, (_, i) => i + 1));
    assert.deepEqual(order, [17, 16, 15, 14, 13, 12, 11, 10, 9, 8]);
    assert.equal(placement(order, 7), null);
    assert.equal(placement(order, 2), null);
    assert.deepEqual(placement(order, 18).dropped, [8]);
  });

  test("an older seq still fits while the list is not full", () => {
    assert.deepEqual(placeAll([10, 2], 3), [10, 2]);
  });
});

describe("ResumePoint", () => {
  test("starts unknown, and ignores live events until it knows where it is", () => {
    const resume = new ResumePoint();
    assert.equal(resume.mark, null);
    resume.see(4);
    assert.equal(resume.mark, null);
    assert.equal(resume.waiting, false);
  });

  test("moves over contiguous seqs, in any order", () => {
    const resume = new ResumePoint(2);
    for (const seq of [5, 3, 5, 4, 3]) resume.see(seq);
    assert.equal(resume.mark, 5);
    assert.equal(resume.waiting, false);
  });

  test("stops below a hole, and a confirm closes it", () => {
    const resume = new ResumePoint(17);
    resume.see(19);
    resume.see(21);
    assert.equal(resume.mark, 17);
    assert.equal(resume.waiting, true);
    assert.equal(resume.highestAhead, 21);
    resume.confirm(19);
    assert.equal(resume.mark, 19);
    assert.deepEqual([...resume.ahead], [21]);
    resume.see(20);
    assert.equal(resume.mark, 21);
    assert.equal(resume.highestAhead, null);
  });

  test("names the hole to fill: from the mark to the lowest event above it", () => {
    const resume = new ResumePoint(17);
    resume.see(21);
    resume.see(19);
    assert.equal(resume.lowestAhead, 19);
    // The store answered for 18 (the fill's range is after 17, before 19): the mark moves on
    // through what waited, and stops at the next hole.
    resume.confirm(18);
    assert.equal(resume.mark, 19);
    assert.equal(resume.lowestAhead, 21);
    resume.confirm(20);
    assert.equal(resume.mark, 21);
    assert.equal(resume.lowestAhead, null);
    assert.equal(resume.waiting, false);
  });

  test("a confirm never moves it back", () => {
    const resume = new ResumePoint(10);
    resume.confirm(4);
    assert.equal(resume.mark, 10);
    resume.see(8);
    assert.equal(resume.waiting, false);
  });

  test("a confirm from unknown sets it", () => {
    const resume = new ResumePoint();
    resume.confirm(0);
    assert.equal(resume.mark, 0);
    resume.see(1);
    assert.equal(resume.mark, 1);
  });
});

describe("confirmedByAck", () => {
  test("is the ack's highest seq, or what the page asked after", () => {
    assert.equal(confirmedByAck(5, [event(7), event(9), event(6)]), 9);
    assert.equal(confirmedByAck(5, []), 5);
    assert.equal(confirmedByAck(null, []), 0);
    assert.equal(confirmedByAck(null, [event(3)]), 3);
  });
});

describe("words", () => {
  test("the catch-up note names the server's limit and what is shown", () => {
    assert.equal(
      catchUpNote(100, 10),
      "More than 100 events happened while this page was disconnected; showing the latest 10."
    );
    assert.match(catchUpNote(250, 10), /^More than 250 events/);
  });

  test("announcements follow the events just placed", () => {
    assert.equal(announcement([]), "");
    assert.equal(announcement([event(1)]), "New event: event 1");
    assert.equal(announcement([event(1), event(2)]), "2 new events. Latest: event 2");
  });

  test("relative times", () => {
    const now = Date.parse("2024-05-01T12:00:00Z");
    const ago = (ms) => relativeText(now - ms, now);
    assert.equal(ago(0), "just now");
    assert.equal(ago(9_000), "just now");
    assert.equal(ago(12_000), "12 seconds ago");
    assert.equal(ago(60_000), "1 minute ago");
    assert.equal(ago(5 * 60_000), "5 minutes ago");
    assert.equal(ago(3 * 3_600_000), "3 hours ago");
    assert.equal(ago(24 * 3_600_000), "yesterday");
    assert.equal(ago(3 * 24 * 3_600_000), "3 days ago");
  });
});

describe("displayOf", () => {
  const table = {
    types: { "channel.raid": { family: "raid", label: "Raid", icon: "icon-raid" } },
    other: { family: "other", label: "Event", icon: "icon-other" },
  };

  test("a known type shows as the server says", () => {
    assert.deepEqual(displayOf(table, "channel.raid"), table.types["channel.raid"]);
  });

  for (const type of ["channel.new_thing", "", "constructor", "__proto__", "toString"]) {
    test(`an unknown type (${JSON.stringify(type)}) shows generically`, () => {
      assert.deepEqual(displayOf(table, type), table.other);
    });
  }

  test("without a table, nothing breaks", () => {
    assert.deepEqual(displayOf(null, "channel.raid"), {});
  });
});

describe("streamAfter", () => {
  const unknown = {
    status: "unknown",
    status_seq: 0,
    since: null,
    title: "",
    category: "",
    info_seq: 0,
  };

  test("stream.online and stream.offline set live and offline", () => {
    const live = streamAfter(unknown, { seq: 3, type: "stream.online", occurred_at: "t3" });
    assert.deepEqual(live, { ...unknown, status: "live", status_seq: 3, since: "t3" });
    const offline = streamAfter(live, { seq: 4, type: "stream.offline", occurred_at: "t4" });
    assert.equal(offline.status, "offline");
    assert.equal(offline.status_seq, 4);
  });

  test("channel.update sets title and category, keeping the status", () => {
    const live = { ...unknown, status: "live", status_seq: 3 };
    const data = { title: "Speedrun", category_name: "Celeste" };
    const next = streamAfter(live, { seq: 5, type: "channel.update", data });
    assert.deepEqual(next, { ...live, title: "Speedrun", category: "Celeste", info_seq: 5 });
  });

  test("an older event than the state's changes nothing (a catch-up after a live one)", () => {
    const state = { ...unknown, status: "offline", status_seq: 9, title: "New", info_seq: 8 };
    assert.equal(streamAfter(state, { seq: 7, type: "stream.online" }), null);
    assert.equal(streamAfter(state, { seq: 8, type: "channel.update", data: {} }), null);
  });

  test("other types, missing data and non-string fields are safe", () => {
    assert.equal(streamAfter(unknown, { seq: 2, type: "channel.follow" }), null);
    assert.equal(streamAfter(unknown, null), null);
    assert.equal(streamAfter(null, { seq: 1, type: "stream.online" }), null);
    const next = streamAfter(unknown, { seq: 2, type: "channel.update", data: { title: 5 } });
    assert.deepEqual([next.title, next.category], ["", ""]);
  });
});

describe("badgesOf", () => {
  const badge = (path, unit) => ({ badges: [{ path, unit }] });
  const money = (value, places, currency) => ({
    amount: { value, decimal_places: places, currency },
  });

  // The same words as sev/events/display.py (tests/events/test_events.py test_badges_word_each_amount).
  for (const [display, data, texts] of [
    [badge("bits", "bits"), { bits: 1 }, ["1 bit"]],
    [badge("bits", "bits"), { bits: 1500 }, ["1,500 bits"]],
    [
      { badges: [{ path: "total", unit: "gifts" }, { path: "tier", unit: "tier" }] },
      { total: 5, tier: "2000" },
      ["5 gifts", "Tier 2"],
    ],
    [badge("tier", "tier"), { tier: "prime" }, ["Prime"]],
    [badge("cumulative_months", "months"), { cumulative_months: 1 }, ["1 month"]],
    [badge("viewers", "viewers"), { viewers: 1234567 }, ["1,234,567 viewers"]],
    [badge("reward.cost", "points"), { reward: { cost: 500 } }, ["500 points"]],
    [badge("amount", "money"), money(123456, 2, "USD"), ["1,234.56 USD"]],
    [badge("amount", "money"), money(500, 0, "JPY"), ["500 JPY"]],
    [badge("amount", "money"), money(5, 2, "EUR"), ["0.05 EUR"]],
    [badge("duration_seconds", "seconds"), { duration_seconds: 90 }, ["90 s"]],
    [badge("level", "level"), { level: 3 }, ["Level 3"]],
    [badge("bits", "bits"), { bits: true }, []],
    [badge("bits", "bits"), { bits: -5 }, []],
    [badge("bits", "bits"), { bits: "100" }, []],
    [badge("bits", "bits"), { bits: 2 ** 53 }, []],
    [badge("bits", "bits"), { bits: 1.5 }, []],
    [badge("tier", "tier"), { tier: "4000" }, []],
    [badge("tier", "tier"), { tier: "constructor" }, []],
    [badge("reward.cost", "points"), { reward: "x" }, []],
    [badge("amount", "money"), money(5, 99, "USD"), []],
    [badge("amount", "money"), money(5, 2, "<b>"), []],
    [badge("bits", "no such unit"), { bits: 5 }, []],
    [{}, { bits: 5 }, []],
  ]) {
    test(`${JSON.stringify(data)} → ${JSON.stringify(texts)}`, () => {
      assert.deepEqual(
        badgesOf(display, data).map((b) => b.text),
        texts
      );
    });
  }
});

describe("summaryParts", () => {
  test("cheermotes in a cheer become bits parts, the rest stays text", () => {
    const summary =
      "Ann cheered 1100 bits: Cheer1000 great <b>run</b> kappa100 Cheer0 abc100 Cheer100!";
    assert.deepEqual(summaryParts({ cheermotes: true }, ["Cheer", "Kappa"], summary), [
      { text: "Ann cheered 1100 bits: " },
      { unit: "bits", text: "1,000 bits", word: "Cheer1000" },
      { text: " great <b>run</b> " },
      { unit: "bits", text: "100 bits", word: "kappa100" },
      { text: " Cheer0 abc100 Cheer100!" },
    ]);
  });

  test("other types, and a table without prefixes, keep the summary whole", () => {
    assert.deepEqual(summaryParts({ cheermotes: false }, ["Cheer"], "Cheer100"), [
      { text: "Cheer100" },
    ]);
    assert.deepEqual(summaryParts({ cheermotes: true }, undefined, "Cheer100"), [
      { text: "Cheer100" },
    ]);
  });

  test("a prefix with regex characters matches only itself", () => {
    assert.deepEqual(summaryParts({ cheermotes: true }, ["a.b"], "axb5 a.b5"), [
      { text: "axb5 " },
      { unit: "bits", text: "5 bits", word: "a.b5" },
    ]);
  });
});

describe("twitchUrl", () => {
  test("a login links to its twitch.tv page", () => {
    assert.equal(twitchUrl("cool_user_42"), "https://www.twitch.tv/cool_user_42");
  });

  for (const value of ["", "Cool_User", "a b", "a/b", "x".repeat(26), "ok\n", "<b>", null, 5]) {
    test(`${JSON.stringify(value)} has no link`, () => assert.equal(twitchUrl(value), null));
  }
});

describe("readHidden and writeHidden", () => {
  test("round-trip the hidden families", () => {
    const stored = writeHidden(new Set(["follow", "cheer"]));
    assert.equal(stored, '["cheer","follow"]');
    assert.deepEqual([...readHidden(stored)].sort(), ["cheer", "follow"]);
  });

  for (const stored of [null, "", "not json", "{}", "5", '"follow"', "[1, null]"]) {
    test(`${JSON.stringify(stored)} hides nothing`, () => {
      assert.deepEqual([...readHidden(stored)], []);
    });
  }
});

// ---- bursts ----------------------------------------------------------------------------------

const T0 = Date.parse("2026-12-04T12:00:00Z");
const at = (seconds) => new Date(T0 + seconds * 1000).toISOString();
const GIFT_TABLE = {
  types: {
    "channel.cheer": { family: "cheer", badges: [{ unit: "bits", path: "bits" }] },
    "channel.follow": { family: "follow" },
    "channel.subscribe": { family: "sub" },
    "channel.subscription.gift": { family: "gift", badges: [{ unit: "gifts", path: "total" }] },
  },
  other: { family: "other" },
};

function gift(seq, total, seconds = 0, tier = "1000") {
  return event(seq, {
    type: "channel.subscription.gift",
    actor: { id: "9", login: "gifter", name: "Gifter" },
    data: { total, tier },
    occurred_at: at(seconds),
  });
}

function giftedSub(seq, who, seconds = 0, tier = "1000") {
  return event(seq, {
    type: "channel.subscribe",
    actor: { id: `u${who}`, login: `user${who}`, name: `User${who}` },
    data: { tier, is_gift: true },
    occurred_at: at(seconds),
  });
}

function follow(seq, who, seconds = 0) {
  return event(seq, {
    type: "channel.follow",
    actor: { id: `u${who}`, login: `user${who}`, name: `User${who}` },
    summary: `User${who} followed`,
    occurred_at: at(seconds),
  });
}

function cheer(seq, who, bits, seconds = 0) {
  return event(seq, {
    type: "channel.cheer",
    actor: { id: `u${who}`, login: `user${who}`, name: `User${who}` },
    data: { bits },
    summary: `User${who} cheered ${bits} bits: message ${seq}`,
    occurred_at: at(seconds),
  });
}

const shape = (groups) => groups.map((g) => [g.kind, g.lead, g.seqs]);

describe("groupEvents", () => {
  test("an older gift whose recipients are gone does not take a newer gift's", () => {
    const events = [gift(1, 2), gift(2, 2), giftedSub(3, 1), giftedSub(4, 2)];
    assert.deepEqual(shape(groupEvents(events, GIFT_TABLE)), [
      ["gift", 2, [4, 3, 2]],
      ["single", 1, [1]],
    ]);
  });

  test("a community gift and its gifted subs are one item led by the gift", () => {
    const events = [gift(1, 3), giftedSub(2, 1), giftedSub(3, 2), giftedSub(4, 3)];
    assert.deepEqual(shape(groupEvents(events, GIFT_TABLE)), [["gift", 1, [4, 3, 2, 1]]]);
  });

  test("gifted subs that arrived before their community gift join it when it comes", () => {
    const subs = [giftedSub(1, 1), giftedSub(2, 2, 1)];
    assert.deepEqual(shape(groupEvents(subs, GIFT_TABLE)), [
      ["single", 2, [2]],
      ["single", 1, [1]],
    ]);
    const all = [...subs, gift(3, 2, 1)];
    assert.deepEqual(shape(groupEvents(all, GIFT_TABLE)), [["gift", 3, [3, 2, 1]]]);
  });

  test("other events interleaved with the burst stay items of their own", () => {
    const events = [giftedSub(1, 1), follow(2, 7), gift(3, 2), follow(4, 8), giftedSub(5, 2)];
    assert.deepEqual(shape(groupEvents(events, GIFT_TABLE)), [
      ["single", 4, [4]],
      ["gift", 3, [5, 3, 1]],
      ["single", 2, [2]],
    ]);
  });

  test("a reconnect's replay and any arrival order give the same items", () => {
    const events = [follow(1, 7), gift(2, 3), giftedSub(3, 1), giftedSub(4, 2), giftedSub(5, 3)];
    const expected = shape(groupEvents(events, GIFT_TABLE));
    const replayed = [...events.slice(3), ...events.slice(0, 2), ...events.slice(1), events[4]];
    assert.deepEqual(shape(groupEvents(replayed, GIFT_TABLE)), expected);
    assert.deepEqual(shape(groupEvents([...events].reverse(), GIFT_TABLE)), expected);
  });

  test("a gift claims no more than its total, its tier only, from the same moment", () => {
    const events = [
      gift(1, 2, 0, "2000"),
      giftedSub(2, 1, 0, "2000"),
      giftedSub(3, 2, 1, "1000"), // another tier
      giftedSub(4, 3, 2, "2000"),
      giftedSub(5, 4, 3, "2000"), // beyond the total of 2
      giftedSub(6, 5, 600, "2000"), // ten minutes later
    ];
    const groups = groupEvents(events, GIFT_TABLE);
    assert.deepEqual(groups.find((g) => g.lead === 1).seqs, [4, 2, 1]);
    assert.deepEqual(
      groups.filter((g) => g.kind === "single").map((g) => g.lead),
      [6, 5, 3]
    );
  });

  test("two community gifts each take their own recipients", () => {
    const events = [gift(1, 2), giftedSub(2, 1), giftedSub(3, 2), gift(4, 1), giftedSub(5, 3)];
    assert.deepEqual(shape(groupEvents(events, GIFT_TABLE)), [
      ["gift", 4, [5, 4]],
      ["gift", 1, [3, 2, 1]],
    ]);
  });

  test("the same viewer's same cheer again and again is one item, the newest leading", () => {
    const events = [cheer(1, 1, 100, 0), cheer(2, 1, 100, 30), cheer(3, 1, 100, 60)];
    assert.deepEqual(shape(groupEvents(events, GIFT_TABLE)), [["repeat", 3, [3, 2, 1]]]);
  });

  test("another amount, another viewer or a long pause is not a repeat", () => {
    const events = [
      cheer(1, 1, 100, 0),
      cheer(2, 1, 500, 1), // another amount
      cheer(3, 2, 100, 2), // another viewer
      cheer(4, 1, 100, 1000), // long after
    ];
    const groups = groupEvents(events, GIFT_TABLE);
    assert.deepEqual(
      groups.map((g) => g.kind),
      ["single", "single", "single", "single"]
    );
  });

  test("identical generic events group; anything without a seq is left out", () => {
    const generic = (seq, summary) =>
      event(seq, { type: "channel.new_thing", summary, occurred_at: at(seq) });
    const events = [generic(1, "same"), generic(2, "same"), { summary: "no seq" }, null];
    assert.deepEqual(shape(groupEvents(events, GIFT_TABLE)), [["repeat", 2, [2, 1]]]);
    const other = [generic(1, "same"), generic(2, "not the same")];
    assert.deepEqual(
      groupEvents(other, GIFT_TABLE).map((g) => g.kind),
      ["single", "single"]
    );
  });

  test("the same viewer's follow again is news, not a repeat", () => {
    const events = [follow(1, 7), follow(2, 7, 5)];
    assert.deepEqual(shape(groupEvents(events, GIFT_TABLE)), [
      ["single", 2, [2]],
      ["single", 1, [1]],
    ]);
  });
});

describe("listView", () => {
  test("a burst counts as one item, so the ten before it stay", () => {
    const before = Array.from({ length: 10 }, (_, i) => follow(i + 1, i + 1, i));
    const burst = [gift(11, 5, 20), ...[1, 2, 3, 4, 5].map((n) => giftedSub(11 + n, n, 20))];
    const view = listView([...before, ...burst], GIFT_TABLE, 10);
    assert.equal(view.groups.length, 10);
    assert.equal(view.groups[0].kind, "gift");
    assert.deepEqual(view.groups[0].seqs, [16, 15, 14, 13, 12, 11]);
    assert.deepEqual(view.dropped, [1]);
  });

  test("what stays is every event above a seq: a burst cut at the bottom, never a hole", () => {
    // The gift (seq 1) claims a recipient sent long after it (seq 5), within its minute.
    const events = [gift(1, 1), follow(2, 7), follow(3, 8), follow(4, 9), giftedSub(5, 1)];
    const view = listView(events, GIFT_TABLE, 3);
    assert.deepEqual(view.dropped, [2, 1]);
    assert.deepEqual(
      view.groups.map((g) => g.seqs),
      [[5], [4], [3]]
    );
  });

  test("a gift that falls off the list takes its recipients with it", () => {
    const events = [giftedSub(1, 1), gift(2, 1), follow(3, 7, 1000), follow(4, 8, 1001)];
    assert.deepEqual(listView(events, GIFT_TABLE, 2).dropped, [2, 1]);
  });
});

describe("needsOlder", () => {
  const follows = (from, n, seconds) =>
    Array.from({ length: n }, (_, i) => follow(from + i, from + i, seconds));

  test("fewer items than the list holds: look further back", () => {
    const events = [gift(1, 2), giftedSub(2, 1), giftedSub(3, 2), ...follows(4, 7, 0)];
    assert.equal(needsOlder(events, GIFT_TABLE, events[0], 10), true);
    assert.equal(needsOlder(follows(1, 10, 0), GIFT_TABLE, follows(1, 1, 0)[0], 10), false);
  });

  test("a gifted sub without its gift, from the moment reached: its gift may be just below", () => {
    const events = [giftedSub(11, 1, 0), giftedSub(12, 2, 0), ...follows(13, 8, 5)];
    assert.equal(needsOlder(events, GIFT_TABLE, events[0], 10), true);
    // Looked back past the window: the gift is not there (never sent, or not subscribed).
    const long = follow(3, 9, -600);
    assert.equal(needsOlder(events, GIFT_TABLE, long, 10), false);
    // Its gift found: nothing waits.
    const found = [gift(10, 2, 0), ...events, follow(9, 9, 0), follow(8, 8, 0)];
    assert.equal(needsOlder(found, GIFT_TABLE, found[found.length - 1], 10), false);
  });
});

test("recipientsOf names a gift's recipients oldest first, as text", () => {
  const events = [gift(3, 2), giftedSub(1, 1), giftedSub(2, 2)];
  events[2].actor.name = "<b>Two</b>";
  const bySeq = new Map(events.map((e) => [e.seq, e]));
  const [group] = groupEvents(events, GIFT_TABLE);
  assert.deepEqual(recipientsOf(group, bySeq), ["User1", "<b>Two</b>"]);
});

// ---- minimums --------------------------------------------------------------------------------

describe("minimums", () => {
  const none = { bits: 0, viewers: 0, tier: 0 };
  const cheerOf = (bits) => event(1, { type: "channel.cheer", data: { bits } });
  const raidOf = (viewers) => event(2, { type: "channel.raid", data: { viewers } });
  const subOf = (type, tier) => event(3, { type, data: { tier } });

  test("read back what was written; anything else reads as no minimum", () => {
    const set = { bits: 500, viewers: 20, tier: 2000 };
    assert.deepEqual(readMinimums(writeMinimums(set)), set);
    assert.deepEqual(readMinimums(null), none);
    assert.deepEqual(readMinimums("not json"), none);
    assert.deepEqual(readMinimums('{"bits": -5, "viewers": "x", "tier": 1500}'), none);
    assert.deepEqual(readMinimums('{"bits": 2.5, "tier": "3000"}'), { ...none, tier: 3000 });
    assert.equal(minimumsSet(set), 3);
    assert.equal(minimumsSet(none), 0);
  });

  test("a cheer below the bits minimum is below, one at or above it is not", () => {
    const minimums = { ...none, bits: 500 };
    assert.equal(belowMinimum(cheerOf(100), minimums), true);
    assert.equal(belowMinimum(cheerOf(500), minimums), false);
    assert.equal(belowMinimum(cheerOf(1000), minimums), false);
    assert.equal(belowMinimum(cheerOf(100), none), false);
  });

  test("a raid below the viewers minimum is below", () => {
    const minimums = { ...none, viewers: 50 };
    assert.equal(belowMinimum(raidOf(10), minimums), true);
    assert.equal(belowMinimum(raidOf(50), minimums), false);
  });

  test("subs, resubs and gifts below the tier minimum are below; Prime is Tier 1", () => {
    const minimums = { ...none, tier: 2000 };
    for (const type of [
      "channel.subscribe",
      "channel.subscription.message",
      "channel.subscription.gift",
    ]) {
      assert.equal(belowMinimum(subOf(type, "1000"), minimums), true, type);
      assert.equal(belowMinimum(subOf(type, "prime"), minimums), true, type);
      assert.equal(belowMinimum(subOf(type, "2000"), minimums), false, type);
      assert.equal(belowMinimum(subOf(type, "3000"), minimums), false, type);
    }
  });

  test("events without the amount, or with a malformed one, are never below", () => {
    const minimums = { bits: 500, viewers: 50, tier: 3000 };
    assert.equal(belowMinimum(event(4, { type: "channel.follow" }), minimums), false);
    assert.equal(belowMinimum(cheerOf("lots"), minimums), false);
    assert.equal(belowMinimum(event(5, { type: "channel.cheer", data: null }), minimums), false);
    assert.equal(belowMinimum(subOf("channel.subscribe", "gold"), minimums), false);
    assert.equal(belowMinimum(null, minimums), false);
  });
});

// ---- alerts ----------------------------------------------------------------------------------

describe("alerts", () => {
  test("nothing alerts by default or from unreadable storage", () => {
    for (const stored of [null, "", "not json", "[1]", '{"sound": "follow"}']) {
      const alerts = readAlerts(stored);
      assert.deepEqual(alertsFor(alerts, "follow"), { sound: false, notify: false }, stored);
      assert.equal(alerts.muted, false);
    }
  });

  test("the kinds asked for alert, each in its own way, and read back as written", () => {
    const alerts = { sound: new Set(["follow"]), notify: new Set(["raid"]), muted: false };
    const back = readAlerts(writeAlerts(alerts));
    assert.deepEqual(alertsFor(back, "follow"), { sound: true, notify: false });
    assert.deepEqual(alertsFor(back, "raid"), { sound: false, notify: true });
    assert.deepEqual(alertsFor(back, "cheer"), { sound: false, notify: false });
  });

  test("mute silences every kind and is kept", () => {
    const alerts = { sound: new Set(["follow"]), notify: new Set(["follow"]), muted: true };
    const back = readAlerts(writeAlerts(alerts));
    assert.equal(back.muted, true);
    assert.deepEqual(alertsFor(back, "follow"), { sound: false, notify: false });
  });

  test("a notification says the kind and the event's text, as text", () => {
    const shown = notificationOf(event(7, { summary: "<b>X</b> followed" }), "Follow");
    assert.deepEqual(shown, { title: "Follow", body: "<b>X</b> followed", tag: "sev-7" });
  });
});
