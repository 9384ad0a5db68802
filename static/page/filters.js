/* The funnel: which event families the viewer hides and the minimum amounts they ask for, kept
 * in localStorage (static/feed.js reads and writes them), and an item's hidden state from them.
 * Storage may refuse (private mode, a policy): the filters then still work for this page.
 */
import {
  FILTER_KEY,
  MINIMUM_KEY,
  belowMinimum,
  minimumsSet,
  readHidden,
  readMinimums,
  writeHidden,
  writeMinimums,
} from "../feed.js";

const state = {
  root: null,
  eventOf: () => undefined, // seq → the event held for it (the list's)
  hidden: new Set(), // the families hidden
  minimums: readMinimums(null),
  count: null, // #filters-count
};

function store(key, value) {
  try {
    window.localStorage.setItem(key, value);
  } catch (error) {
    // Storage refused: kept for this page only.
  }
}

/** Read the stored filters and wire the funnel's fields; `eventOf(seq)` gives an item's event. */
export function init({ root, eventOf }) {
  state.root = root;
  state.eventOf = eventOf;
  state.count = document.getElementById("filters-count");
  try {
    state.hidden = readHidden(window.localStorage.getItem(FILTER_KEY));
  } catch (error) {
    // Storage refused (private mode, a policy): the filter still works for this page.
  }
  try {
    state.minimums = readMinimums(window.localStorage.getItem(MINIMUM_KEY));
  } catch (error) {
    // As for the kinds: the minimums still work for this page.
  }
  const filters = document.getElementById("filters");
  if (!filters) return;
  for (const box of filters.querySelectorAll('input[name="family"]')) {
    box.checked = !state.hidden.has(box.value);
    box.addEventListener("change", () => {
      if (box.checked) state.hidden.delete(box.value);
      else state.hidden.add(box.value);
      store(FILTER_KEY, writeHidden(state.hidden));
      applyFilter();
    });
  }
  for (const field of filters.querySelectorAll(".minimum")) {
    field.value = String(state.minimums[field.name] || 0);
    field.addEventListener("change", () => {
      const given = { ...state.minimums, [field.name]: field.value };
      state.minimums = readMinimums(JSON.stringify(given));
      store(MINIMUM_KEY, writeMinimums(state.minimums));
      applyFilter();
    });
  }
  filters.hidden = false;
}

/** Hide an item that is a burst's member, of a hidden family, or below the minimums. */
export function filterItem(item) {
  item.hidden =
    item.classList.contains("event-member") ||
    state.hidden.has(item.getAttribute("data-family")) ||
    belowMinimum(state.eventOf(Number(item.getAttribute("data-seq"))), state.minimums);
}

/** Filter every item on the page again, and count what the funnel hides. */
export function applyFilter() {
  for (const item of state.root.querySelectorAll(".events li[data-family]")) filterItem(item);
  const count = state.hidden.size + minimumsSet(state.minimums);
  if (state.count) state.count.textContent = count ? ` · ${count} hidden` : "";
}
