/* The two DOM helpers every part of the streamer page uses: reading the server's JSON data
 * blocks, and building an element whose text is set as text, never parsed as HTML (event text
 * is untrusted).
 */

/** The parsed JSON of the `<script type="application/json">` with this id, or null. */
export function readJson(id) {
  const node = document.getElementById(id);
  if (!node) return null;
  try {
    return JSON.parse(node.textContent);
  } catch (error) {
    return null;
  }
}

/** A new `tag` element with this class and text (as textContent). */
export function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}
