/* Older history, on request: the "Show older events" button (#show-older) pages the API's
 * stored events into the older list, and the first paint tops the live list up from the same
 * API before the socket connects. Asked only when the viewer clicks or the page loads, never
 * on a timer (static/older.js decides what to ask and when it has ended).
 */
import {
  isLastPage,
  lowestSeq,
  olderButtonHidden,
  olderPage,
  olderUrl,
  topUp,
} from "../older.js";
import * as list from "./list.js";
import { announce } from "./status.js";
import { tick } from "./times.js";

const state = {
  login: "",
  streamerId: null,
  kinds: null, // the server's display table (sev/events/display.py)
  maxEvents: 0,
  ended: false, // the API had nothing older
  button: null, // #show-older
  note: null, // #older-note
};

/** Find the button and note, and page on its clicks. */
export function init({ login, streamerId, kinds, maxEvents }) {
  Object.assign(state, { login, streamerId, kinds, maxEvents });
  state.button = document.getElementById("show-older");
  state.note = document.getElementById("older-note");
  if (state.button) state.button.addEventListener("click", showOlder);
}

/** Show the button only while the live list is full and older events may exist. */
export function showOlderButton() {
  if (state.button) {
    state.button.hidden = olderButtonHidden(state.ended, list.liveCount(), state.maxEvents);
  }
}

/* The stored events just below `before`, highest first (at most maxEvents). */
async function fetchOlder(before) {
  const response = await fetch(olderUrl(state.login, before, state.maxEvents), {
    credentials: "same-origin",
    headers: { accept: "application/json" },
  });
  if (!response.ok) throw new Error("HTTP " + response.status);
  const body = await response.json();
  return olderPage(body, before, state.streamerId);
}

/** Top the live list up after the first paint (`initial`: its events, oldest first). */
export function fillList(initial) {
  return topUp({
    initial,
    max: state.maxEvents,
    table: state.kinds,
    shown: list.liveEvents,
    fetchOlder,
    place: (event) => list.place(event, false),
  });
}

async function showOlder() {
  const before = lowestSeq(list.shownSeqs());
  if (before === null) return;
  const { button, note } = state;
  button.disabled = true;
  note.textContent = "Loading…";
  try {
    const events = await fetchOlder(before);
    list.addOlder(events);
    state.ended = isLastPage(events, state.maxEvents);
    note.textContent = state.ended ? "That is every event SEV has stored." : "";
    if (events.length) announce(`${events.length} older events shown.`);
    tick();
  } catch (error) {
    note.textContent = "Older events could not load; try again.";
  } finally {
    button.disabled = false;
    showOlderButton();
  }
}
