// static/watching.js, the socket's decisions, in Node's own test runner: `node --test tests/js/`.
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { ResumePoint } from "../../static/feed.js";
import {
  MAX_RETRY_DELAY_MS,
  fillAnswered,
  holeRange,
  initialMark,
  retryDelay,
  watchOutcome,
} from "../../static/watching.js";

describe("watchOutcome", () => {
  test("an ack without an error is applied", () => {
    assert.deepEqual(watchOutcome(null, { events: [] }), { ok: true });
    assert.deepEqual(watchOutcome(undefined, {}), { ok: true });
  });

  test("no answer in time is retried", () => {
    assert.deepEqual(watchOutcome(new Error("operation has timed out"), undefined), {
      ok: false,
      retry: true,
      reason: "SEV did not answer",
    });
  });

  test("a refusal the server marks as passing is retried, in the server's words", () => {
    assert.deepEqual(watchOutcome(null, { error: "busy", retry: true }), {
      ok: false,
      retry: true,
      reason: "busy",
    });
  });

  test("any other refusal stops the page watching", () => {
    assert.deepEqual(watchOutcome(null, { error: "not followed" }), {
      ok: false,
      retry: false,
      reason: "not followed",
    });
    assert.deepEqual(watchOutcome(null, { error: "no", retry: false }).retry, false);
    assert.deepEqual(watchOutcome(null, null), {
      ok: false,
      retry: false,
      reason: "SEV did not answer",
    });
  });
});

test("retryDelay doubles from a second up to its cap", () => {
  assert.deepEqual(
    [1, 2, 3, 4, 5, 6, 20].map(retryDelay),
    [1000, 2000, 4000, 8000, MAX_RETRY_DELAY_MS, MAX_RETRY_DELAY_MS, MAX_RETRY_DELAY_MS]
  );
  assert.equal(MAX_RETRY_DELAY_MS, 10000);
});

describe("initialMark", () => {
  test("is the highest seq rendered", () => {
    assert.equal(initialMark([{ seq: 3 }, { seq: 9 }, { seq: 5 }]), 9);
    assert.equal(initialMark([{ seq: 0 }]), 0);
  });

  test("is null for an empty list: the first watch asks for the latest events", () => {
    assert.equal(initialMark([]), null);
  });
});

describe("holeRange", () => {
  test("asks for the seqs between the mark and the lowest one waiting", () => {
    assert.deepEqual(holeRange(10, 13, 100), { after: 10, before: 13 });
  });

  test("asks for at most a catch-up's worth", () => {
    assert.deepEqual(holeRange(10, 500, 50), { after: 10, before: 61 });
  });

  test("with the resume point: a filled hole moves the mark past what waited", () => {
    const resume = new ResumePoint(10);
    resume.see(12);
    resume.see(13);
    assert.equal(resume.waiting, true);
    const { after, before } = holeRange(resume.mark, resume.lowestAhead, 100);
    assert.deepEqual([after, before], [10, 12]);
    resume.confirm(before - 1);
    assert.equal(resume.mark, 13);
    assert.equal(resume.waiting, false);
  });

  test("with the resume point: a wide hole is filled a catch-up at a time, never skipped", () => {
    const resume = new ResumePoint(10);
    resume.see(200);
    const asked = [];
    while (resume.waiting) {
      const range = holeRange(resume.mark, resume.lowestAhead, 50);
      asked.push([range.after, range.before]);
      resume.confirm(range.before - 1);
    }
    assert.deepEqual(asked, [
      [10, 61],
      [60, 111],
      [110, 161],
      [160, 200],
    ]);
    assert.equal(resume.mark, 200);
  });
});

describe("fillAnswered", () => {
  test("an ack with a list of events is applied", () => {
    assert.equal(fillAnswered(null, { events: [] }), true);
    assert.equal(fillAnswered(undefined, { events: [{ seq: 1 }] }), true);
  });

  for (const [name, error, ack] of [
    ["no answer in time", new Error("timeout"), undefined],
    ["no ack", null, null],
    ["a refusal", null, { error: "busy", events: [] }],
    ["events that are not a list", null, { events: "1,2" }],
    ["no events", null, {}],
  ]) {
    test(`${name} is asked again`, () => assert.equal(fillAnswered(error, ack), false));
  }
});
