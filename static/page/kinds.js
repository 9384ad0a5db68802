/* The "what this streamer shares with SEV" panel (each kind's state, and the folded panel's
 * counts) and the notices above the list: why kinds are held back, a revocation Twitch sent,
 * and the end of the viewer's session. Texts from the server and Twitch are set as text.
 */
import { element } from "./dom.js";

const state = {
  words: {}, // a kind's state → the server's words for it
  revoked: {}, // why Twitch stopped sending a kind (a revocation's status) → the server's words
  notices: null,
};

/** Take the kinds' state words and the revocations' words from the page settings. */
export function init(settings) {
  state.words = settings.kind_states || {};
  state.revoked = settings.revoked || {};
  state.notices = document.getElementById("notices");
}

function showKind(item, kindState, why) {
  item.setAttribute("data-state", kindState);
  const label = item.querySelector(".kind-state");
  if (label) label.textContent = state.words[kindState] || kindState;
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

/** Show the kinds' states and held-back notices of a watch ack's `streamer`. */
export function refreshKinds(streamer) {
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
  for (const old of state.notices.querySelectorAll(".notice-held")) old.remove();
  for (const text of texts) {
    const item = element("li", "notice notice-held");
    item.appendChild(element("span", "notice-text", String(text)));
    state.notices.appendChild(item);
  }
}

/** A socket `notice`: Twitch stopped sending a kind; the panel and a dismissable notice say so. */
export function showNotice(notice) {
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
  const reason = Object.hasOwn(state.revoked, status) ? state.revoked[status] : status;
  const item = element("li", "notice");
  item.appendChild(element("span", "notice-text", `Twitch stopped sending ${what}: ${reason}.`));
  const dismiss = element("button", "button button-quiet notice-dismiss", "Dismiss");
  dismiss.type = "button";
  dismiss.addEventListener("click", () => item.remove());
  item.appendChild(dismiss);
  state.notices.appendChild(item);
}

/** The viewer's session ended: why, and the way back to the login. */
export function showSessionEnded(reason) {
  const item = element("li", "notice notice-session");
  item.appendChild(element("span", "notice-text", String(reason || "Your SEV session ended.")));
  const again = element("a", "button notice-login", "Log in again");
  again.setAttribute("href", "/login?next=" + encodeURIComponent(location.pathname));
  item.appendChild(again);
  state.notices.appendChild(item);
}
