/* One event as a list item, built as the server renders it (templates/streamer.html): its
 * kind's icon, its summary (cheermotes as amounts), its badges, its actor's picture and name,
 * and its time. Event text is untrusted: every node is built with textContent, never as HTML,
 * and a picture's address passes static/faces.js first.
 */
import { badgesOf, displayOf, summaryParts, twitchUrl } from "../feed.js";
import { FACE_SIZE, faceSrc } from "../faces.js";
import { element } from "./dom.js";
import { updateTime } from "./times.js";

const SVG_NS = "http://www.w3.org/2000/svg";

/** One event's <li>, shown with `kinds` (the server's display table). */
export function renderEvent(event, kinds) {
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
