/* The event lists: the live list (#events, the latest events) and, below it, the older list
 * (#older) the viewer pages in. Every event held is its own <li>, placed by seq, never by
 * arrival; a seq already held is dropped, so a reconnect's catch-up and the live stream may
 * overlap. A burst (static/feed.js groupEvents) shows as its lead's item, the others hidden in
 * it, and counts as one of the live list's maxEvents items. Event text is untrusted: nodes are
 * built with textContent, never as HTML.
 */
import { groupEvents, listView, recipientsOf } from "../feed.js";
import { element } from "./dom.js";
import { filterItem } from "./filters.js";
import { renderEvent } from "./item.js";

const state = {
  kinds: null, // the server's display table (sev/events/display.py)
  maxEvents: 0,
  onPlaced: () => {}, // told after every placing (the "Show older events" button follows)
  list: null, // #events
  emptyNote: null, // #events-empty
  older: null, // #older
  order: [], // the seqs in the live list, highest first
  items: new Map(), // seq → <li> of the live list
  olderItems: new Map(), // seq → <li>, below the live list, highest first
  held: new Map(), // seq → event, of both lists: what the grouping reads
  floor: -Infinity, // the highest seq that has left the live list
};

/** Find the lists; `onPlaced()` is called after each placing. */
export function init({ kinds, maxEvents, onPlaced }) {
  state.kinds = kinds;
  state.maxEvents = maxEvents;
  state.onPlaced = onPlaced;
  state.list = document.getElementById("events");
  state.emptyNote = document.getElementById("events-empty");
  state.older = document.getElementById("older");
}

/** The event held for `seq` (in either list), or undefined. */
export function eventOf(seq) {
  return state.held.get(seq);
}

/** The live list's <li> of `seq`, or undefined. */
export function itemOf(seq) {
  return state.items.get(seq);
}

/** How many events the live list holds. */
export function liveCount() {
  return state.order.length;
}

/** The events of the live list. */
export function liveEvents() {
  return [...state.items.keys()].map((seq) => state.held.get(seq));
}

/** Every seq shown, in both lists. */
export function shownSeqs() {
  return [...state.order, ...state.olderItems.keys()];
}

/* The server-rendered list is the first paint: adopt its items, highest seq first, and group
 * its bursts as live ones are (the server renders every event as its own item). */
export function adopt(initialEvents) {
  for (const event of initialEvents) state.held.set(event.seq, event);
  for (const item of state.list.querySelectorAll("li[data-seq]")) {
    const seq = Number(item.getAttribute("data-seq"));
    state.items.set(seq, item);
    state.order.push(seq);
  }
  state.order.sort((a, b) => b - a);
  for (const event of initialEvents) place(event, false);
  regroup(state.items);
}

/** Put one event in its place by seq; false when it is already held or too old to show. */
export function place(event, animate) {
  const { items, olderItems, held, older } = state;
  if (items.has(event.seq) || olderItems.has(event.seq)) return false;
  // At or below an event that already left the list: keeping it would leave a hole.
  if (event.seq <= state.floor) return false;
  held.set(event.seq, event);
  const view = listView(
    [...state.order, event.seq].map((seq) => held.get(seq)),
    state.kinds,
    state.maxEvents
  );
  const kept = !view.dropped.includes(event.seq);
  if (kept) {
    const item = renderEvent(event, state.kinds);
    const below = state.order.find((seq) => seq < event.seq);
    state.list.insertBefore(item, below === undefined ? null : items.get(below));
    items.set(event.seq, item);
  }
  state.order = [...state.order, event.seq].filter((seq) => !view.dropped.includes(seq));
  state.floor = Math.max(state.floor, ...view.dropped);
  state.order.sort((a, b) => b - a);
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
  state.onPlaced();
  const shown = items.get(leads.get(event.seq));
  if (kept && animate && shown) highlight(shown);
  state.emptyNote.hidden = state.order.length > 0;
  return kept;
}

/** Append a page of older events (highest first) to the older list, each seq once. */
export function addOlder(events) {
  const { items, olderItems, held, older } = state;
  for (const event of events) {
    if (items.has(event.seq) || olderItems.has(event.seq)) continue;
    const item = renderEvent(event, state.kinds);
    older.appendChild(item);
    olderItems.set(event.seq, item);
    held.set(event.seq, event);
  }
  regroup(olderItems);
  older.hidden = olderItems.size === 0;
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
  const events = [...itemsBySeq.keys()].map((seq) => state.held.get(seq)).filter(Boolean);
  for (const group of groupEvents(events, state.kinds)) {
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
    const names = recipientsOf(group, state.held);
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
