/* The streamer page's feed as pure functions: which events it shows, where a new one goes, the
 * seq it resumes from after a reconnect, and the words it uses. No DOM, no timers, no network:
 * static/streamer.js applies what these decide, and tests/js/feed.test.mjs runs them in Node.
 */

// How many events the list keeps when the server does not say (its PAGE_SIZE).
export const MAX_EVENTS = 10;

/** Whether a value is an event the page can place: a finite seq, and this streamer's. */
export function isEvent(event, streamerId) {
  return (
    event !== null &&
    typeof event === "object" &&
    typeof event.seq === "number" &&
    Number.isFinite(event.seq) &&
    (!event.broadcaster || !streamerId || event.broadcaster.id === streamerId)
  );
}

/** The events of an ack worth placing, oldest first, so announcements follow what happened. */
export function oldestFirst(events, streamerId) {
  if (!Array.isArray(events)) return [];
  return events.filter((event) => isEvent(event, streamerId)).sort((a, b) => a.seq - b.seq);
}

/**
 * Where `seq` goes among the `shown` seqs (highest first, at most `max`): null when it is
 * already shown, or older than every event of a full list; else its index in the new order
 * and the seqs that fall off the end.
 */
export function placement(shown, seq, max = MAX_EVENTS) {
  if (shown.includes(seq)) return null;
  if (shown.length >= max && seq < shown[shown.length - 1]) return null;
  let index = shown.findIndex((held) => held < seq);
  if (index < 0) index = shown.length;
  const order = [...shown.slice(0, index), seq, ...shown.slice(index)];
  return { index, order: order.slice(0, max), dropped: order.slice(max) };
}

/**
 * The highest seq below which the page holds every event (its contiguous mark): the `after` of
 * its next watch. Live events above it wait in `ahead` until the seqs between arrive
 * (out-of-order delivery from several processes) or are read from the store (a `fill`, or the
 * next watch's ack), which `confirm`s them: a hole is filled, never skipped.
 */
export class ResumePoint {
  constructor(mark = null) {
    this.mark = mark;
    this.ahead = new Set();
  }

  /** A live event arrived; a lower one may still be in flight. */
  see(seq) {
    if (this.mark === null || seq <= this.mark) return;
    this.ahead.add(seq);
    this.#advance();
  }

  /** Every event up to `seq` is known: an ack's catch-up, or a hole that stayed open. */
  confirm(seq) {
    if (this.mark === null || seq > this.mark) this.mark = seq;
    for (const held of this.ahead) {
      if (held <= this.mark) this.ahead.delete(held);
    }
    this.#advance();
  }

  /** Whether events above the mark wait for a lower seq. */
  get waiting() {
    return this.ahead.size > 0;
  }

  /** The lowest seq waiting above the mark: a hole lies between the mark and it. */
  get lowestAhead() {
    return this.ahead.size > 0 ? Math.min(...this.ahead) : null;
  }

  /** The highest seq waiting above the mark (null when none waits). */
  get highestAhead() {
    return this.ahead.size > 0 ? Math.max(...this.ahead) : null;
  }

  #advance() {
    while (this.ahead.has(this.mark + 1)) {
      this.mark += 1;
      this.ahead.delete(this.mark);
    }
  }
}

/** What a watch ack confirms: every seq up to its highest event, or to `sentAfter`. */
export function confirmedByAck(sentAfter, events) {
  const highest = events.length ? Math.max(...events.map((event) => event.seq)) : 0;
  return Math.max(sentAfter === null ? 0 : sentAfter, highest);
}

/** The note shown when more events were missed than a catch-up holds. */
export function catchUpNote(limit, shown) {
  return (
    `More than ${limit} events happened while this page was disconnected; ` +
    `showing the latest ${shown}.`
  );
}

/** What the screen reader hears for the events just placed, oldest first ("" for none). */
export function announcement(added) {
  if (added.length === 0) return "";
  if (added.length === 1) return "New event: " + added[0].summary;
  return added.length + " new events. Latest: " + added[added.length - 1].summary;
}

/**
 * How an event type is shown (family, label, icon), from the server's table
 * (`{types: {type: display}, other: display}`, sev/events/display.py); the generic one when unknown.
 */
export function displayOf(table, type) {
  const types = (table && table.types) || {};
  if (Object.hasOwn(types, type)) return types[type];
  return (table && table.other) || {};
}

const RELATIVE =
  typeof Intl !== "undefined" && Intl.RelativeTimeFormat
    ? new Intl.RelativeTimeFormat("en", { numeric: "auto", style: "long" })
    : null;

/** "just now", "12 seconds ago", "5 minutes ago", "yesterday": `then` as seen at `now` (ms). */
export function relativeText(then, now) {
  const seconds = Math.round((now - then) / 1000);
  if (seconds < 10) return "just now";
  if (!RELATIVE) return new Date(then).toLocaleString();
  if (seconds < 60) return RELATIVE.format(-seconds, "second");
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return RELATIVE.format(-minutes, "minute");
  const hours = Math.round(minutes / 60);
  if (hours < 24) return RELATIVE.format(-hours, "hour");
  return RELATIVE.format(-Math.round(hours / 24), "day");
}

const STATUS_TYPES = { "stream.online": "live", "stream.offline": "offline" };

/**
 * The stream's state after `event` (`{status, status_seq, since, title, category, info_seq}`,
 * as sev/streamers.py read_stream renders it), or null when the event changes nothing: not a
 * stream.online/offline or channel.update, or older than what the state comes from.
 */
export function streamAfter(stream, event) {
  if (!stream || !event || typeof event.seq !== "number") return null;
  const data = event.data !== null && typeof event.data === "object" ? event.data : {};
  if (Object.hasOwn(STATUS_TYPES, event.type) && event.seq > (stream.status_seq || 0)) {
    return {
      ...stream,
      status: STATUS_TYPES[event.type],
      status_seq: event.seq,
      since: event.occurred_at || null,
    };
  }
  if (event.type === "channel.update" && event.seq > (stream.info_seq || 0)) {
    const text = (value) => (typeof value === "string" ? value : "");
    return {
      ...stream,
      title: text(data.title),
      category: text(data.category_name),
      info_seq: event.seq,
    };
  }
  return null;
}

// ---- amounts as badges (the same words as sev/events/display.py BADGE_UNITS) ------------------------

const MAX_AMOUNT = Number.MAX_SAFE_INTEGER;
const MAX_DECIMAL_PLACES = 8;
const TIERS = { 1000: "Tier 1", 2000: "Tier 2", 3000: "Tier 3", prime: "Prime" };

function count(value) {
  return Number.isInteger(value) && value >= 0 && value <= MAX_AMOUNT ? value : null;
}

/** 1234567 → "1,234,567", as Python's f"{n:,}". */
function grouped(n) {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

function plural(one, many) {
  return (value) => {
    const n = count(value);
    return n === null ? null : `${grouped(n)} ${n === 1 ? one : many}`;
  };
}

function money(value) {
  if (value === null || typeof value !== "object") return null;
  const amount = count(value.value);
  const places = count(value.decimal_places);
  const currency = value.currency;
  if (amount === null || places === null || places > MAX_DECIMAL_PLACES) return null;
  if (typeof currency !== "string" || !/^[A-Z]{3}$/.test(currency)) return null;
  const scale = 10 ** places;
  const whole = Math.floor(amount / scale);
  const fraction = amount - whole * scale;
  const number = grouped(whole) + (places ? "." + String(fraction).padStart(places, "0") : "");
  return `${number} ${currency}`;
}

/** How each badge unit reads, from the amount in the event's data (null: no badge). */
export const BADGE_WORDS = {
  bits: plural("bit", "bits"),
  tier: (value) => (typeof value === "string" && Object.hasOwn(TIERS, value) ? TIERS[value] : null),
  months: plural("month", "months"),
  gifts: plural("gift", "gifts"),
  viewers: plural("viewer", "viewers"),
  points: plural("point", "points"),
  money,
  seconds: (value) => (count(value) === null ? null : `${grouped(value)} s`),
  level: (value) => (count(value) === null ? null : `Level ${grouped(value)}`),
};

function at(data, path) {
  let value = data;
  for (const key of String(path).split(".")) {
    value = value !== null && typeof value === "object" && Object.hasOwn(value, key) ? value[key] : null;
  }
  return value;
}

/** An event's badges (`[{unit, text}]`), from its display's `badges` and its data. */
export function badgesOf(display, data) {
  const found = [];
  const specs = display && Array.isArray(display.badges) ? display.badges : [];
  for (const spec of specs) {
    const words = Object.hasOwn(BADGE_WORDS, spec.unit) ? BADGE_WORDS[spec.unit] : null;
    const text = words ? words(at(data, spec.path)) : null;
    if (text !== null) found.push({ unit: spec.unit, text });
  }
  return found;
}

/**
 * A summary cut into `{text}` parts and, where the display allows cheermotes, `{unit: "bits",
 * text, word}` parts for each cheermote ("Cheer100" → "100 bits"); `prefixes` from the table.
 */
export function summaryParts(display, prefixes, summary) {
  const text = String(summary);
  if (!display || !display.cheermotes || !Array.isArray(prefixes) || prefixes.length === 0) {
    return [{ text }];
  }
  const escaped = prefixes.map((p) => String(p).replace(/[.*+?^${}()|[\]\\]/g, "\\$&"));
  const cheermote = new RegExp(`^(?:${escaped.join("|")})([1-9][0-9]{0,6})$`, "i");
  const parts = [];
  for (const piece of text.split(/(\s+)/)) {
    const match = cheermote.exec(piece);
    const last = parts[parts.length - 1];
    if (match) {
      parts.push({ unit: "bits", text: BADGE_WORDS.bits(Number(match[1])), word: piece });
    } else if (last && !last.unit) {
      last.text += piece;
    } else if (piece) {
      parts.push({ text: piece });
    }
  }
  return parts;
}

// A Twitch login, as sev/events/model.py TWITCH_LOGIN: only such a name goes into a twitch.tv link.
const TWITCH_LOGIN = /^[a-z0-9_]{1,25}$/;

/** The twitch.tv page of a login, or null when the value cannot be a Twitch login. */
export function twitchUrl(login) {
  return typeof login === "string" && TWITCH_LOGIN.test(login)
    ? "https://www.twitch.tv/" + login
    : null;
}

// ---- which kinds the viewer hides (kept in localStorage) -------------------------------------

export const FILTER_KEY = "sev.hidden-families";

/** The hidden families stored under FILTER_KEY: a Set of strings; empty for anything else. */
export function readHidden(stored) {
  try {
    const value = JSON.parse(stored);
    return new Set(Array.isArray(value) ? value.filter((v) => typeof v === "string") : []);
  } catch (error) {
    return new Set();
  }
}

/** What to store under FILTER_KEY for these hidden families. */
export function writeHidden(hidden) {
  return JSON.stringify([...hidden].sort());
}

// ---- bursts: a community gift with its gifted subs, and repeats, as one item each ------------

// Twitch sends a community gift's channel.subscription.gift and its recipients' gifted
// channel.subscribe events within moments, in any order; a minute is ample.
export const GIFT_WINDOW_MS = 60 * 1000;
// The same event again (a viewer's repeated 100-bit cheers) within this of the previous one.
export const REPEAT_WINDOW_MS = 2 * 60 * 1000;
const COMMUNITY_GIFT = "channel.subscription.gift";
const SUBSCRIBE = "channel.subscribe";

function timeOf(event) {
  const then = Date.parse(event.occurred_at);
  return Number.isNaN(then) ? null : then;
}

function within(a, b, windowMs) {
  const [ta, tb] = [timeOf(a), timeOf(b)];
  return ta !== null && tb !== null && Math.abs(ta - tb) <= windowMs;
}

function dataOf(event) {
  return event.data !== null && typeof event.data === "object" ? event.data : {};
}

function isGiftedSub(event) {
  return event.type === SUBSCRIBE && dataOf(event).is_gift === true;
}

/**
 * What makes two events "the same again": type, actor and their amounts (else their text);
 * null for an event never taken as a repeat. Only cheers and generic events repeat: a second
 * follow or sub of the same viewer is news, and several viewers' follows are several events.
 */
function repeatKey(event, table) {
  const display = displayOf(table, String(event.type));
  if (event.type !== "channel.cheer" && display.family !== "other") return null;
  const badges = badgesOf(display, dataOf(event));
  const what = badges.length ? badges.map((b) => b.text).join("|") : String(event.summary);
  return JSON.stringify([event.type, (event.actor && event.actor.id) || "", what]);
}

const highestFirst = (a, b) => b - a;

/**
 * The items a set of events makes, highest `lead` first: `{lead, seqs, kind}`, `lead` the seq
 * of the event the item shows, `seqs` all of its events' (highest first). `kind` is "gift" (a
 * community gift with up to `total` gifted subs of its tier from the same moment, whichever
 * arrived first), "repeat" (a viewer's same cheer, or the same generic event, again within
 * REPEAT_WINDOW_MS of the last; the newest leads) or "single". Duplicates (a replayed seq) count once; the order they come in
 * does not matter, so the page regroups everything it holds whenever an event arrives.
 */
export function groupEvents(events, table) {
  const bySeq = new Map();
  for (const event of Array.isArray(events) ? events : []) {
    if (isEvent(event)) bySeq.set(event.seq, event);
  }
  const ordered = [...bySeq.values()].sort((a, b) => a.seq - b.seq);
  const claimed = new Set();
  const groups = [];
  // Newest gift first: an older one whose own recipients are no longer held must not take them.
  for (const gift of [...ordered].reverse()) {
    if (gift.type !== COMMUNITY_GIFT) continue;
    const { total, tier } = dataOf(gift);
    const wanted = Number.isInteger(total) && total > 0 ? total : 0;
    const recipients = ordered
      .filter(
        (sub) =>
          !claimed.has(sub.seq) &&
          isGiftedSub(sub) &&
          dataOf(sub).tier === tier &&
          within(sub, gift, GIFT_WINDOW_MS)
      )
      // Nearest first; of two as near, the one after the gift (the order Twitch mostly sends).
      .sort((a, b) => Math.abs(a.seq - gift.seq) - Math.abs(b.seq - gift.seq) || b.seq - a.seq)
      .slice(0, wanted);
    claimed.add(gift.seq);
    for (const sub of recipients) claimed.add(sub.seq);
    const seqs = [gift.seq, ...recipients.map((sub) => sub.seq)].sort(highestFirst);
    groups.push({ lead: gift.seq, seqs, kind: recipients.length ? "gift" : "single" });
  }
  const open = new Map(); // repeat key → the group its latest event is in
  for (const event of ordered) {
    if (claimed.has(event.seq)) continue;
    const key = repeatKey(event, table);
    const group = key === null ? undefined : open.get(key);
    if (group && within(bySeq.get(group.lead), event, REPEAT_WINDOW_MS)) {
      group.seqs.unshift(event.seq);
      group.lead = event.seq;
      group.kind = "repeat";
    } else {
      const fresh = { lead: event.seq, seqs: [event.seq], kind: "single" };
      groups.push(fresh);
      if (key !== null) open.set(key, fresh);
    }
  }
  return groups.sort((a, b) => b.lead - a.lead);
}

/**
 * The live list's view of `events`: the newest events that make at most `max` items (a burst
 * counts as one), and the seqs of the older ones, which leave the list (highest first). What
 * stays is always every event above a seq, never a list with holes: a burst cut at the bottom
 * shows what is left of it.
 */
export function listView(events, table, max = MAX_EVENTS) {
  const bySeq = new Map();
  for (const event of Array.isArray(events) ? events : []) {
    if (isEvent(event)) bySeq.set(event.seq, event);
  }
  const newestFirst = [...bySeq.values()].sort((a, b) => b.seq - a.seq);
  for (let keep = newestFirst.length; keep > 0; keep -= 1) {
    const groups = groupEvents(newestFirst.slice(0, keep), table);
    if (groups.length <= max) {
      return { groups, dropped: newestFirst.slice(keep).map((event) => event.seq) };
    }
  }
  return { groups: [], dropped: newestFirst.map((event) => event.seq) };
}

/**
 * Whether the list, topping itself up after the first paint, should look further back than
 * `reached` (the oldest event it has looked at): fewer than `max` items, or a gifted sub whose
 * community gift may lie just below (Twitch sends them within GIFT_WINDOW_MS of each other).
 */
export function needsOlder(events, table, reached, max = MAX_EVENTS) {
  const groups = groupEvents(events, table);
  if (groups.length < max) return true;
  if (!reached) return false;
  const bySeq = new Map(events.filter((event) => isEvent(event)).map((e) => [e.seq, e]));
  return groups.some((group) => {
    const lead = bySeq.get(group.lead);
    return group.kind === "single" && isGiftedSub(lead) && within(lead, reached, GIFT_WINDOW_MS);
  });
}

/** The recipients an item of kind "gift" lists (oldest first): their names, as text. */
export function recipientsOf(group, bySeq) {
  return group.seqs
    .filter((seq) => seq !== group.lead)
    .sort((a, b) => a - b)
    .map((seq) => bySeq.get(seq))
    .filter(Boolean)
    .map((event) => (event.actor && event.actor.name ? String(event.actor.name) : "Someone"));
}

// ---- minimum amounts the viewer asks for (kept in localStorage) ------------------------------

export const MINIMUM_KEY = "sev.minimums";
const TIER_RANK = { prime: 1000, 1000: 1000, 2000: 2000, 3000: 3000 };
export const MINIMUM_TIERS = [0, 1000, 2000, 3000];

function wholeAtLeastZero(value) {
  const n = Number(value);
  return Number.isInteger(n) && n >= 0 && n <= MAX_AMOUNT ? n : 0;
}

/* A setting kept in localStorage as a JSON object; {} when absent or unreadable. */
function storedObject(stored) {
  let value = null;
  try {
    value = JSON.parse(stored);
  } catch (error) {
    value = null;
  }
  return value !== null && typeof value === "object" ? value : {};
}

/** The minimums stored under MINIMUM_KEY (`{bits, viewers, tier}`, 0: none); zeros if unreadable. */
export function readMinimums(stored) {
  const given = storedObject(stored);
  const tier = wholeAtLeastZero(given.tier);
  return {
    bits: wholeAtLeastZero(given.bits),
    viewers: wholeAtLeastZero(given.viewers),
    tier: MINIMUM_TIERS.includes(tier) ? tier : 0,
  };
}

/** What to store under MINIMUM_KEY for these minimums. */
export function writeMinimums(minimums) {
  return JSON.stringify(readMinimums(JSON.stringify(minimums)));
}

/** How many of the minimums are set (for the filter's "· N hidden" count). */
export function minimumsSet(minimums) {
  return ["bits", "viewers", "tier"].filter((key) => minimums[key] > 0).length;
}

/**
 * Whether an event falls below the viewer's minimums: a cheer's bits, a raid's viewers, a
 * sub's, resub's or gift's tier (Prime counts as Tier 1). Events without such an amount never do.
 */
export function belowMinimum(event, minimums) {
  if (!event || !minimums) return false;
  const data = event.data !== null && typeof event.data === "object" ? event.data : {};
  if (event.type === "channel.cheer" && minimums.bits > 0) {
    return count(data.bits) !== null && data.bits < minimums.bits;
  }
  if (event.type === "channel.raid" && minimums.viewers > 0) {
    return count(data.viewers) !== null && data.viewers < minimums.viewers;
  }
  if (minimums.tier > 0 && Object.hasOwn(TIER_RANK, String(data.tier))) {
    return TIER_RANK[String(data.tier)] < minimums.tier;
  }
  return false;
}

// ---- alerts: a sound and a desktop notification per kind, off until asked --------------------

export const ALERT_KEY = "sev.alerts";

function families(value) {
  return new Set(Array.isArray(value) ? value.filter((v) => typeof v === "string") : []);
}

/** The alerts stored under ALERT_KEY: `{sound, notify}` (Sets of families) and `muted`. */
export function readAlerts(stored) {
  const given = storedObject(stored);
  return {
    sound: families(given.sound),
    notify: families(given.notify),
    muted: given.muted === true,
  };
}

/** What to store under ALERT_KEY for these alerts. */
export function writeAlerts(alerts) {
  return JSON.stringify({
    sound: [...alerts.sound].sort(),
    notify: [...alerts.notify].sort(),
    muted: Boolean(alerts.muted),
  });
}

/** Which alerts a live event of `family` brings: none while muted. */
export function alertsFor(alerts, family) {
  if (!alerts || alerts.muted) return { sound: false, notify: false };
  return { sound: alerts.sound.has(family), notify: alerts.notify.has(family) };
}

/** A desktop notification's title, text and tag for an event (text only, as the list's). */
export function notificationOf(event, label) {
  return {
    title: String(label || "New event"),
    body: String(event.summary || event.type + " event"),
    tag: "sev-" + String(event.seq),
  };
}
