/* The streamer page: the Twitch embed, and the latest events kept live over Socket.IO.
 *
 * The first paint is the server-rendered list (from the same data as #initial-state). After
 * that the page talks to SEV only over the websocket: `watch` on every (re)connect with the
 * highest seq it holds, then `event`s as they happen. Events are placed by seq, never by
 * arrival, and a seq already held is dropped, so a reconnect's catch-up and the live stream can
 * overlap freely (the decisions are static/feed.js's). Event text is untrusted: nodes are built
 * with textContent, never as HTML.
 *
 * An ES module; socket.io.min.js, a classic script before it, defines the global `io`.
 */
import {
  ALERT_KEY,
  FILTER_KEY,
  MAX_EVENTS,
  MINIMUM_KEY,
  ResumePoint,
  alertsFor,
  announcement,
  badgesOf,
  belowMinimum,
  catchUpNote,
  confirmedByAck,
  displayOf,
  groupEvents,
  isEvent,
  listView,
  minimumsSet,
  needsOlder,
  notificationOf,
  oldestFirst,
  readAlerts,
  readHidden,
  readMinimums,
  recipientsOf,
  relativeText,
  streamAfter,
  summaryParts,
  twitchUrl,
  writeAlerts,
  writeHidden,
  writeMinimums,
} from "./feed.js";
import { FACE_SIZE, faceSrc } from "./faces.js";

const TICK_MS = 5000;
const WATCH_TIMEOUT_MS = 10000;
// A hole in the seqs (n+2 arrived, n+1 not yet) closes within milliseconds when it is only
// out-of-order delivery from several processes; one still open after this long is filled
// from the store (`fill`), never skipped.
const HOLE_GRACE_MS = 1000;
// SEV's event to every open page of a user whose session ended (sev/live/server.py).
const SESSION_ENDED = "session_ended";
const SVG_NS = "http://www.w3.org/2000/svg";

function readJson(id) {
  const node = document.getElementById(id);
  if (!node) return null;
  try {
    return JSON.parse(node.textContent);
  } catch (error) {
    return null;
  }
}

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function start(root) {
  const initial = readJson("initial-state") || { streamer: null, events: [] };
  // From sev/events.py and the server's settings: how each type is shown, the kinds' state
  // texts, how many events a catch-up holds at most and how many the list keeps.
  const kinds = readJson("event-kinds");
  const settings = readJson("page-settings") || {};
  const kindStates = settings.kind_states || {};
  const maxEvents = settings.page_size || MAX_EVENTS;
  const login = root.getAttribute("data-login");
  const streamerId = root.getAttribute("data-id");
  const list = document.getElementById("events");
  const emptyNote = document.getElementById("events-empty");
  const eventsNote = document.getElementById("events-note");
  const announcer = document.getElementById("announcer");
  const connection = document.getElementById("connection");
  const notices = document.getElementById("notices");

  // ---- the list ---------------------------------------------------------------------------

  // Every event held is its own <li>, by seq; a burst (feed.js groupEvents) shows as its lead's
  // item, the others hidden in it, and counts as one of the maxEvents items.
  let order = []; // the seqs in the live list, highest first
  const items = new Map(); // seq → <li>
  const held = new Map(); // seq → event, of both lists: what the grouping reads
  let floor = -Infinity; // the highest seq that has left the live list
  const resume = new ResumePoint(); // `after` for the next watch
  let holeTimer = null;
  let sessionEnded = false;
  const older = document.getElementById("older");
  const olderButton = document.getElementById("show-older");
  const olderNote = document.getElementById("older-note");
  const olderItems = new Map(); // seq → <li>, below the live list, highest first
  let olderEnd = false; // the API had nothing older

  /* Put one event in its place by seq; false when it is already held or too old to show. */
  function place(event, animate) {
    if (items.has(event.seq) || olderItems.has(event.seq)) return false;
    // At or below an event that already left the list: keeping it would leave a hole.
    if (event.seq <= floor) return false;
    held.set(event.seq, event);
    const view = listView(
      [...order, event.seq].map((seq) => held.get(seq)),
      kinds,
      maxEvents
    );
    const kept = !view.dropped.includes(event.seq);
    if (kept) {
      const item = renderEvent(event);
      const below = order.find((seq) => seq < event.seq);
      list.insertBefore(item, below === undefined ? null : items.get(below));
      items.set(event.seq, item);
    }
    order = [...order, event.seq].filter((seq) => !view.dropped.includes(seq));
    floor = Math.max(floor, ...view.dropped);
    order.sort((a, b) => b - a);
    // What falls off the live list moves down to the older list while the viewer reads
    // history, else away.
    for (const seq of view.dropped) {
      const dropped = items.get(seq);
      items.delete(seq);
      if (dropped && olderItems.size > 0) {
        const below = [...olderItems.keys()].filter((s) => s < seq).sort((a, b) => b - a)[0];
        older.insertBefore(dropped, below === undefined ? null : olderItems.get(below));
        olderItems.set(seq, dropped);
      } else {
        if (dropped) dropped.remove();
        held.delete(seq);
      }
    }
    const leads = regroup(items);
    if (view.dropped.length && olderItems.size > 0) regroup(olderItems);
    showOlderButton();
    const shown = items.get(leads.get(event.seq));
    if (kept && animate && shown) highlight(shown);
    emptyNote.hidden = order.length > 0;
    return kept;
  }

  function highlight(item) {
    item.classList.remove("event-new");
    void item.offsetWidth; // a restyle in between, so that the animation starts again
    item.classList.add("event-new");
    item.addEventListener("animationend", () => item.classList.remove("event-new"), {
      once: true,
    });
  }

  /* "Replay": the item's highlight again (the button needs JavaScript, so only it adds it). */
  function addReplay(item) {
    if (item.querySelector(".event-replay")) return;
    const replay = element("button", "event-replay", "Replay");
    replay.type = "button";
    replay.addEventListener("click", () => highlight(item));
    item.appendChild(replay);
  }

  /* Show the bursts among these items (seq → <li>) as one item each: the lead carries the
   * count or the recipients, the others are hidden. Returns each seq's lead. */
  function regroup(itemsBySeq) {
    const leads = new Map();
    const events = [...itemsBySeq.keys()].map((seq) => held.get(seq)).filter(Boolean);
    for (const group of groupEvents(events, kinds)) {
      for (const seq of group.seqs) {
        leads.set(seq, group.lead);
        const item = itemsBySeq.get(seq);
        if (!item) continue;
        addReplay(item);
        item.classList.toggle("event-member", seq !== group.lead);
        if (seq === group.lead) showGroup(item, group);
        filterItem(item);
      }
    }
    return leads;
  }

  /* The lead's part of a burst: "×3" for a repeat, a disclosure of the recipients for a gift
   * (its open state kept while it only grows). Names are text, never HTML. */
  function showGroup(item, group) {
    const signature = group.kind === "single" ? "" : `${group.kind}:${group.seqs.join(",")}`;
    if ((item.getAttribute("data-group") || "") === signature) return;
    const previous = item.querySelector(".event-group");
    const wasOpen = Boolean(previous && previous.open);
    for (const old of item.querySelectorAll(".event-group, .event-count")) old.remove();
    item.setAttribute("data-group", signature);
    if (group.kind === "repeat") {
      const times = element("span", "event-count");
      times.appendChild(element("span", null, `×${group.seqs.length}`)).setAttribute(
        "aria-hidden",
        "true"
      );
      times.appendChild(element("span", "visually-hidden", `${group.seqs.length} times`));
      const kind = item.querySelector(".event-kind");
      if (kind) kind.after(times);
    } else if (group.kind === "gift") {
      const names = recipientsOf(group, held);
      const details = element("details", "event-group");
      details.open = wasOpen;
      const word = names.length === 1 ? "recipient" : "recipients";
      details.appendChild(element("summary", "event-group-summary", `${names.length} ${word}`));
      const recipients = element("ul", "event-recipients");
      for (const name of names) recipients.appendChild(element("li", null, name));
      details.appendChild(recipients);
      // In the meta line, so that a folded burst takes no more room than any other item.
      const meta = item.querySelector(".event-meta");
      if (meta) meta.appendChild(details);
    }
  }

  function renderEvent(event) {
    const display = displayOf(kinds, String(event.type));
    const item = element("li", "event");
    item.setAttribute("data-seq", String(event.seq));
    item.setAttribute("data-id", String(event.id));
    item.setAttribute("data-type", String(event.type));
    item.setAttribute("data-family", String(display.family || ""));

    const icon = element("span", "event-icon");
    icon.setAttribute("aria-hidden", "true");
    const svg = document.createElementNS(SVG_NS, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("width", "20");
    svg.setAttribute("height", "20");
    const use = document.createElementNS(SVG_NS, "use");
    use.setAttribute("href", "#" + String(display.icon || ""));
    svg.appendChild(use);
    icon.appendChild(svg);
    item.appendChild(icon);

    const body = element("div", "event-body");
    const summary = element("p", "event-summary");
    const text = event.summary || event.type + " event";
    summary.title = text;
    for (const part of summaryParts(display, kinds && kinds.cheermotes, text)) {
      if (part.unit) {
        const amount = element("span", "amount amount-cheermote", part.text);
        amount.setAttribute("data-unit", part.unit);
        amount.title = part.word;
        summary.appendChild(amount);
      } else {
        summary.appendChild(document.createTextNode(part.text));
      }
    }
    body.appendChild(summary);
    const meta = element("p", "event-meta");
    meta.appendChild(element("span", "event-kind", display.label));
    for (const badge of badgesOf(display, event.data)) {
      const amount = element("span", "amount", badge.text);
      amount.setAttribute("data-unit", badge.unit);
      meta.appendChild(amount);
    }
    const face = event.actor ? faceSrc(event.actor.profile_image_url) : null;
    if (face) {
      // Decorative: the name beside it says who. No referrer goes to Twitch's CDN.
      const img = element("img", "avatar event-face");
      img.alt = "";
      img.width = FACE_SIZE;
      img.height = FACE_SIZE;
      img.loading = "lazy";
      img.referrerPolicy = "no-referrer";
      img.src = face;
      meta.appendChild(img);
    }
    if (event.actor && event.actor.name) {
      const url = twitchUrl(event.actor.login);
      const actor = element(url ? "a" : "span", "event-actor", event.actor.name);
      if (url) {
        actor.href = url;
        actor.rel = "noopener noreferrer";
        actor.target = "_blank";
        actor.setAttribute("aria-label", `${event.actor.name} on Twitch (new tab)`);
      }
      meta.appendChild(actor);
    }
    const time = element("time");
    time.setAttribute("datetime", String(event.occurred_at || ""));
    updateTime(time, Date.now());
    meta.appendChild(time);
    body.appendChild(meta);
    item.appendChild(body);
    return item;
  }

  // ---- which kinds the viewer hides ----------------------------------------------------------

  const filters = document.getElementById("filters");
  const filtersCount = document.getElementById("filters-count");
  let hidden = new Set();
  try {
    hidden = readHidden(window.localStorage.getItem(FILTER_KEY));
  } catch (error) {
    // Storage refused (private mode, a policy): the filter still works for this page.
  }

  let minimums = readMinimums(null);
  try {
    minimums = readMinimums(window.localStorage.getItem(MINIMUM_KEY));
  } catch (error) {
    // As for the kinds: the minimums still work for this page.
  }

  function filterItem(item) {
    item.hidden =
      item.classList.contains("event-member") ||
      hidden.has(item.getAttribute("data-family")) ||
      belowMinimum(held.get(Number(item.getAttribute("data-seq"))), minimums);
  }

  function applyFilter() {
    for (const item of root.querySelectorAll(".events li[data-family]")) filterItem(item);
    const count = hidden.size + minimumsSet(minimums);
    if (filtersCount) filtersCount.textContent = count ? ` · ${count} hidden` : "";
  }

  if (filters) {
    for (const box of filters.querySelectorAll('input[name="family"]')) {
      box.checked = !hidden.has(box.value);
      box.addEventListener("change", () => {
        if (box.checked) hidden.delete(box.value);
        else hidden.add(box.value);
        try {
          window.localStorage.setItem(FILTER_KEY, writeHidden(hidden));
        } catch (error) {
          // As above: kept for this page only.
        }
        applyFilter();
      });
    }
    for (const field of filters.querySelectorAll(".minimum")) {
      field.value = String(minimums[field.name] || 0);
      field.addEventListener("change", () => {
        minimums = readMinimums(JSON.stringify({ ...minimums, [field.name]: field.value }));
        try {
          window.localStorage.setItem(MINIMUM_KEY, writeMinimums(minimums));
        } catch (error) {
          // As above: kept for this page only.
        }
        applyFilter();
      });
    }
    filters.hidden = false;
  }

  // ---- alerts: a sound and a desktop notification per kind, off until asked ----------------

  const alertsBar = document.getElementById("alerts-bar");
  const alertsNote = document.getElementById("alerts-note");
  const muteButton = document.getElementById("alerts-mute");
  let alerts = readAlerts(null);
  let audio = null;
  try {
    alerts = readAlerts(window.localStorage.getItem(ALERT_KEY));
  } catch (error) {
    // As for the filters: the alerts still work for this page.
  }

  function saveAlerts() {
    try {
      window.localStorage.setItem(ALERT_KEY, writeAlerts(alerts));
    } catch (error) {
      // Kept for this page only.
    }
  }

  /* The page's one AudioContext, made (or resumed) from a click: browsers start sound only so. */
  function audioContext() {
    const Context = window.AudioContext || window.webkitAudioContext;
    if (!Context) return null;
    if (audio === null) audio = new Context();
    if (audio.state === "suspended") audio.resume().catch(() => {});
    return audio;
  }

  /* A short two-note chime, generated: no sound file to fetch. */
  function chime() {
    const context = audioContext();
    if (!context) return;
    const start = context.currentTime;
    [880, 1320].forEach((frequency, index) => {
      const tone = context.createOscillator();
      const gain = context.createGain();
      const at = start + index * 0.12;
      tone.frequency.value = frequency;
      gain.gain.setValueAtTime(0.0001, at);
      gain.gain.exponentialRampToValueAtTime(0.15, at + 0.02);
      gain.gain.exponentialRampToValueAtTime(0.0001, at + 0.2);
      tone.connect(gain).connect(context.destination);
      tone.start(at);
      tone.stop(at + 0.22);
    });
  }

  /* A live event shown now: its kind's sound and notification, if the viewer asked for them. */
  function alertFor(event) {
    const item = items.get(event.seq);
    if (!item || item.hidden) return; // a burst's recipient, or a kind or amount filtered out
    const wanted = alertsFor(alerts, item.getAttribute("data-family"));
    try {
      if (wanted.sound) chime();
      if (wanted.notify && "Notification" in window && Notification.permission === "granted") {
        const shown = notificationOf(event, displayOf(kinds, String(event.type)).label);
        new Notification(shown.title, { body: shown.body, tag: shown.tag });
      }
    } catch (error) {
      // No sound device, or notifications refused after all: the list still shows the event.
    }
  }

  function showMute() {
    muteButton.setAttribute("aria-pressed", alerts.muted ? "true" : "false");
  }

  async function askToNotify(box) {
    if (!("Notification" in window)) {
      alertsNote.textContent = "This browser cannot show desktop notifications.";
      return false;
    }
    if (Notification.permission === "granted") return true;
    // Asked from the viewer's own click, as browsers require.
    const answer = await Notification.requestPermission();
    if (answer === "granted") return true;
    alertsNote.textContent = "Notifications are blocked for SEV in this browser's settings.";
    box.checked = false;
    return false;
  }

  if (alertsBar && muteButton) {
    for (const box of alertsBar.querySelectorAll('input[name="sound"], input[name="notify"]')) {
      const chosen = alerts[box.name];
      box.checked = chosen.has(box.value);
      box.addEventListener("change", async () => {
        alertsNote.textContent = "";
        if (box.checked && box.name === "sound") audioContext();
        if (box.checked && box.name === "notify" && !(await askToNotify(box))) return;
        if (box.checked) chosen.add(box.value);
        else chosen.delete(box.value);
        saveAlerts();
      });
    }
    muteButton.addEventListener("click", () => {
      alerts.muted = !alerts.muted;
      if (!alerts.muted) audioContext();
      showMute();
      saveAlerts();
    });
    showMute();
    alertsBar.hidden = false;
  }

  // ---- older history, on request ------------------------------------------------------------

  function showOlderButton() {
    if (olderButton) olderButton.hidden = olderEnd || order.length < maxEvents;
  }

  function lowestShown() {
    const seqs = [...order, ...olderItems.keys()];
    return seqs.length ? Math.min(...seqs) : null;
  }

  /* The stored events just below `before`, highest first (at most maxEvents). */
  async function fetchOlder(before) {
    const url =
      `/api/streamers/${encodeURIComponent(login)}/events` +
      `?before=${encodeURIComponent(before)}&limit=${encodeURIComponent(maxEvents)}`;
    const response = await fetch(url, {
      credentials: "same-origin",
      headers: { accept: "application/json" },
    });
    if (!response.ok) throw new Error("HTTP " + response.status);
    const body = await response.json();
    return oldestFirst(body && body.events, streamerId)
      .filter((event) => event.seq < before)
      .reverse();
  }

  /* The server renders its latest maxEvents events; a burst among them is one item, and a
   * community gift may lie just below its recipients' subs: the list looks further back (a few
   * pages at most) until it has maxEvents items and no gifted sub waits for its gift. */
  async function fillList() {
    let reached = initialEvents.length ? initialEvents[0] : null; // the oldest looked at
    let end = initialEvents.length < maxEvents; // the server had no more
    for (let page = 0; page < 5 && !end && reached; page += 1) {
      const shown = [...items.keys()].map((seq) => held.get(seq));
      if (!needsOlder(shown, kinds, reached, maxEvents)) return;
      const events = await fetchOlder(reached.seq);
      for (const event of events) place(event, false);
      end = events.length < maxEvents;
      if (events.length) reached = events[events.length - 1];
    }
  }

  async function showOlder() {
    const before = lowestShown();
    if (before === null) return;
    olderButton.disabled = true;
    olderNote.textContent = "Loading…";
    try {
      const events = await fetchOlder(before);
      for (const event of events) {
        if (items.has(event.seq) || olderItems.has(event.seq)) continue;
        const item = renderEvent(event);
        older.appendChild(item);
        olderItems.set(event.seq, item);
        held.set(event.seq, event);
      }
      regroup(olderItems);
      older.hidden = olderItems.size === 0;
      olderEnd = events.length < maxEvents;
      olderNote.textContent = olderEnd ? "That is every event SEV has stored." : "";
      if (events.length) announce(`${events.length} older events shown.`);
      tick();
    } catch (error) {
      olderNote.textContent = "Older events could not load; try again.";
    } finally {
      olderButton.disabled = false;
      showOlderButton();
    }
  }

  if (olderButton) olderButton.addEventListener("click", showOlder);

  // ---- what the page knows (the `after` of the next watch) ----------------------------------

  function noteSeen(seq) {
    resume.see(seq);
    waitForHole();
  }

  function confirm(seq) {
    resume.confirm(seq);
    waitForHole();
  }

  function waitForHole() {
    clearTimeout(holeTimer);
    holeTimer = null;
    if (resume.waiting) holeTimer = setTimeout(fillHole, HOLE_GRACE_MS);
  }

  /* A hole still open after the grace: ask the store for what lies between the mark and the
   * lowest event above it. The store never shows seq N+1 before N, so its answer is everything
   * there will ever be in between; with the socket down, the next watch's ack fills it. */
  function fillHole() {
    if (!socket || !socket.connected || !resume.waiting) return;
    const mine = generation;
    const after = resume.mark;
    const before = Math.min(resume.lowestAhead, after + settings.catch_up_limit + 1);
    socket
      .timeout(WATCH_TIMEOUT_MS)
      .emit("fill", { streamer: login, after, before }, (error, ack) => {
        if (mine !== generation) return; // reconnected: the new watch's ack fills it
        if (error || !ack || ack.error || !Array.isArray(ack.events)) {
          holeTimer = setTimeout(fillHole, HOLE_GRACE_MS);
          return;
        }
        const events = oldestFirst(ack.events, streamerId);
        events.forEach(noteStream);
        const added = events.filter((event) => place(event, true));
        confirm(before - 1);
        const text = announcement(added);
        if (text) announce(text);
      });
  }

  // ---- announcing, notes, connection state --------------------------------------------------

  function announce(text) {
    // A changed text is what gets read: the same sentence twice differs by a trailing space.
    announcer.textContent = announcer.textContent === text ? text + "\u00a0" : text;
  }

  function showNote(text) {
    eventsNote.textContent = text || "";
    eventsNote.hidden = !text;
  }

  // Whether this page receives events live, in the server's words (sev/streamers.py): never
  // "Live", which is the stream's own state in the header.
  const STATES = settings.connection_states || {};

  function setConnection(state, detail) {
    connection.setAttribute("data-state", state);
    const text = connection.querySelector(".connection-text");
    const words = STATES[state] || state;
    text.textContent = detail ? words + " · " + detail : words;
  }

  // ---- the stream's own state (live or offline, title, category) ----------------------------

  let stream = readJson("stream-state");
  const streamStates = settings.stream_states || {};
  const streamLine = document.getElementById("stream");

  function noteStream(event) {
    const next = streamAfter(stream, event);
    if (next === null || !streamLine) return;
    stream = next;
    streamLine.setAttribute("data-status", String(stream.status));
    const parts = [
      [".stream-status", streamStates[stream.status] || String(stream.status)],
      [".stream-title", stream.title],
      [".stream-category", stream.category],
    ];
    for (const [selector, text] of parts) {
      const node = streamLine.querySelector(selector);
      if (!node) continue;
      node.textContent = text || "";
      if (selector !== ".stream-status") node.hidden = !text;
    }
  }

  // ---- relative times that keep themselves current ----------------------------------------

  const absolute =
    typeof Intl !== "undefined"
      ? new Intl.DateTimeFormat("en", { dateStyle: "medium", timeStyle: "medium" })
      : null;

  function updateTime(time, now) {
    const then = Date.parse(time.getAttribute("datetime"));
    if (isNaN(then)) return;
    const text = relativeText(then, now);
    if (time.textContent !== text) time.textContent = text;
    if (absolute && !time.title) time.title = absolute.format(new Date(then));
  }

  function tick() {
    const now = Date.now();
    for (const time of root.querySelectorAll(".events time[datetime]")) updateTime(time, now);
  }

  // ---- the "what this streamer shares" panel ------------------------------------------------

  function showKind(item, state, why) {
    item.setAttribute("data-state", state);
    const label = item.querySelector(".kind-state");
    if (label) label.textContent = kindStates[state] || state;
    if (why) item.title = why;
    countKinds();
  }

  // The folded panel's one line: how many kinds are on, how many stopped or held back.
  function countKinds() {
    const on = document.querySelectorAll('.kind[data-state="on"]').length;
    const trouble = document.querySelectorAll(
      '.kind[data-state="stopped"], .kind[data-state="held"]'
    ).length;
    const onCount = document.querySelector(".shares-on");
    const troubleLine = document.querySelector(".shares-trouble");
    const troubleCount = document.querySelector(".shares-trouble-count");
    if (onCount) onCount.textContent = String(on);
    if (troubleCount) troubleCount.textContent = String(trouble);
    if (troubleLine) troubleLine.hidden = trouble === 0;
  }

  function refreshKinds(streamer) {
    if (!streamer || !Array.isArray(streamer.kinds)) return;
    streamer.kinds.forEach((kind, index) => {
      const item = document.querySelector(`.kind[data-index="${index}"]`);
      if (item && item.getAttribute("data-type") === kind.type) {
        showKind(item, String(kind.state), kind.held || kind.status || "");
      }
    });
    showHeldNotices(streamer.notices);
  }

  // Why kinds are held back (Twitch's limits, a removed account), as the server words it.
  function showHeldNotices(texts) {
    if (!Array.isArray(texts)) return;
    for (const old of notices.querySelectorAll(".notice-held")) old.remove();
    for (const text of texts) {
      const item = element("li", "notice notice-held");
      item.appendChild(element("span", "notice-text", String(text)));
      notices.appendChild(item);
    }
  }

  const REASONS = {
    authorization_revoked: "the streamer withdrew SEV's access",
    user_removed: "the Twitch account no longer exists",
    notification_failures_exceeded: "SEV missed too many deliveries; it will subscribe again",
    version_removed: "Twitch retired this event version",
    moderator_removed: "SEV lost the moderator access this needs; it asks again within the hour",
    beta_maintenance: "Twitch paused these events for maintenance; SEV asks again within the hour",
    chat_user_banned: "the account these events need was banned from the chat",
  };

  function showNotice(notice) {
    if (!notice || notice.kind !== "revocation") return;
    const type = String(notice.type || "");
    const status = String(notice.status || "revoked");
    const labels = [];
    for (const item of document.querySelectorAll(".kind")) {
      if (item.getAttribute("data-type") === type) {
        showKind(item, "stopped", status);
        const label = item.querySelector(".kind-label");
        if (label && !labels.includes(label.textContent)) labels.push(label.textContent);
      }
    }
    const what = labels.length ? labels.join(" and ") : type;
    const reason = Object.hasOwn(REASONS, status) ? REASONS[status] : status;
    const item = element("li", "notice");
    item.appendChild(element("span", "notice-text", `Twitch stopped sending ${what}: ${reason}.`));
    const dismiss = element("button", "button button-quiet notice-dismiss", "Dismiss");
    dismiss.type = "button";
    dismiss.addEventListener("click", () => item.remove());
    item.appendChild(dismiss);
    notices.appendChild(item);
  }

  // ---- the socket ---------------------------------------------------------------------------

  let socket = null;
  let generation = 0; // one per connection: an ack from an older one is ignored
  let watchTimer = null;
  let watchFailures = 0;

  function applyAck(ack, sentAfter) {
    if (ack.streamer) refreshKinds(ack.streamer);
    const events = oldestFirst(ack.events, streamerId);
    events.forEach(noteStream);
    const added = events.filter((event) => place(event, true));
    if (ack.gap) showNote(catchUpNote(settings.catch_up_limit, maxEvents));
    // The ack holds every event after `sentAfter` (or the newest ones): nothing below is missing.
    confirm(confirmedByAck(sentAfter, events));
    const text = announcement(added);
    if (text) announce(text);
  }

  function watch() {
    clearTimeout(watchTimer);
    if (!socket.connected) return;
    const mine = generation;
    const sentAfter = resume.mark;
    socket
      .timeout(WATCH_TIMEOUT_MS)
      .emit("watch", { streamer: login, after: sentAfter }, (error, ack) => {
        if (mine !== generation || !socket.connected) return; // a reconnect watches anew
        if (error || !ack || ack.error) {
          const retry = Boolean(error) || Boolean(ack && ack.retry);
          const reason = ack && ack.error ? String(ack.error) : "SEV did not answer";
          if (retry) {
            watchFailures += 1;
            const delay = Math.min(1000 * Math.pow(2, watchFailures - 1), 10000);
            setConnection("reconnecting", reason);
            watchTimer = setTimeout(watch, delay);
          } else {
            setConnection("offline", reason);
          }
          return;
        }
        watchFailures = 0;
        applyAck(ack, sentAfter);
        setConnection("live");
      });
  }

  /* This viewer's session ended (logged out in another tab, or Twitch refused the login): SEV
   * disconnects the socket; the page says why and leads to the login, and stops reconnecting. */
  function endSession(reason) {
    if (sessionEnded) return;
    sessionEnded = true;
    clearTimeout(watchTimer);
    socket.disconnect();
    setConnection("offline", "logged out");
    const item = element("li", "notice notice-session");
    item.appendChild(element("span", "notice-text", String(reason || "Your SEV session ended.")));
    const again = element("a", "button notice-login", "Log in again");
    again.setAttribute("href", "/login?next=" + encodeURIComponent(location.pathname));
    item.appendChild(again);
    notices.appendChild(item);
  }

  function connect() {
    if (typeof io !== "function") {
      setConnection("offline", "SEV's update script could not load");
      return;
    }
    // Websocket only: SEV refuses HTTP long-polling, and polling is what this page must not do.
    socket = io({
      transports: ["websocket"],
      reconnectionDelay: 500,
      reconnectionDelayMax: 5000,
    });
    socket.on("connect", () => {
      generation += 1;
      watchFailures = 0;
      setConnection("connecting", "catching up");
      watch();
    });
    socket.on("event", (event) => {
      if (!isEvent(event, streamerId)) return;
      noteSeen(event.seq);
      noteStream(event);
      if (place(event, true)) {
        announce(announcement([event]));
        alertFor(event);
      }
    });
    socket.on("notice", showNotice);
    socket.on(SESSION_ENDED, (notice) => endSession(notice && notice.reason));
    socket.on("disconnect", (reason) => {
      generation += 1;
      clearTimeout(watchTimer);
      if (sessionEnded) return;
      if (reason === "io server disconnect") socket.connect(); // SEV dropped us: come back
      setConnection(navigator.onLine === false ? "offline" : "reconnecting");
    });
    socket.on("connect_error", () => {
      if (socket.active) {
        setConnection(navigator.onLine === false ? "offline" : "reconnecting");
      } else {
        // Refused, not lost: the session is gone. Retrying would be refused again.
        endSession("Your SEV session has ended: log in again to see live events.");
      }
    });
    window.addEventListener("offline", () => setConnection("offline", "no network"));
    window.addEventListener("online", () => {
      if (!socket.connected) setConnection("reconnecting");
    });
  }

  // ---- start --------------------------------------------------------------------------------

  // The server-rendered list is the first paint: adopt its items, highest seq first, and
  // group its bursts as live ones are (the server renders every event as its own item).
  const initialEvents = oldestFirst(initial.events, streamerId);
  for (const event of initialEvents) held.set(event.seq, event);
  for (const item of list.querySelectorAll("li[data-seq]")) {
    const seq = Number(item.getAttribute("data-seq"));
    items.set(seq, item);
    order.push(seq);
  }
  order.sort((a, b) => b - a);
  for (const event of initialEvents) {
    place(event, false);
    if (resume.mark === null || event.seq > resume.mark) resume.mark = event.seq;
  }
  regroup(items);
  tick();
  applyFilter();
  showOlderButton();
  window.setInterval(tick, TICK_MS);
  setConnection("connecting");
  // Topped up before the live connection, so that "live" means the list is complete.
  fillList()
    .catch(() => {}) // not topped up: the list stays as the server rendered it
    .finally(() => {
      tick();
      connect();
    });
}

// ---- the Twitch embed -----------------------------------------------------------------------

function loadEmbed() {
  const box = document.getElementById("embed");
  const status = document.getElementById("embed-status");
  if (!box || box.getAttribute("data-demo") === "1") return; // a simulated channel: no stream
  let failed = false;
  function fail() {
    failed = true;
    box.setAttribute("data-state", "failed");
    status.textContent =
      "Twitch’s player could not load (offline, or blocked by the browser). " +
      "The events beside it still update live.";
  }
  status.textContent = "Loading the Twitch player…";
  box.setAttribute("data-state", "loading");
  const timer = setTimeout(fail, 15000);
  const script = document.createElement("script");
  script.src = "https://embed.twitch.tv/embed/v1.js";
  script.async = true;
  script.onerror = () => {
    clearTimeout(timer);
    fail();
  };
  script.onload = () => {
    clearTimeout(timer);
    if (failed) return;
    if (!window.Twitch || typeof window.Twitch.Embed !== "function") return fail();
    try {
      new window.Twitch.Embed(document.getElementById("embed-player"), {
        channel: box.getAttribute("data-channel"),
        layout: "video-with-chat",
        width: "100%",
        height: "100%",
        parent: [box.getAttribute("data-parent")],
      });
      box.setAttribute("data-state", "ready");
    } catch (error) {
      fail();
    }
  };
  document.head.appendChild(script);
}

// The streamer page, or the page of a channel SEV does not follow yet (embed only, no events).
const root = document.getElementById("streamer");
if (root) start(root);
if (root || document.getElementById("streamer-unfollowed")) {
  // After `load`, so that a slow or unreachable Twitch never holds up the page itself.
  if (document.readyState === "complete") loadEmbed();
  else window.addEventListener("load", loadEmbed);
}
