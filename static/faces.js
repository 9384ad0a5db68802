/* The actors' pictures on the streamer page: which addresses may go in an img's src.
 *
 * SEV's server checks them already (sev/profiles.py: face_src); the page checks again, since an
 * event's JSON is data, not markup. Allowed: https addresses on Twitch's image CDN, and the demo's
 * simulated Twitch's pictures, a path on SEV's own origin. The page policy (sev/web/security.py)
 * allows exactly these.
 */
export const TWITCH_IMAGES = "https://static-cdn.jtvnw.net/";
export const DEMO_IMAGES = "/_twitch/profile-images/";
export const FACE_SIZE = 16;

/* `url` when it may be an img's src, else null. */
export function faceSrc(url) {
  if (typeof url !== "string" || url.length === 0 || url.length > 2000) return null;
  // Printable ASCII only, without quotes, angle brackets, backslashes or backticks.
  if (!/^[\x21-\x7e]+$/.test(url) || /["'<>\\`]/.test(url)) return null;
  if (hasDotSegment(url)) return null;
  if (url.startsWith(DEMO_IMAGES)) return url;
  return url.startsWith(TWITCH_IMAGES) ? url : null;
}

/* Whether the path has a "." or ".." segment in any spelling the browser resolves as one
 * ("%2e%2e", ".%2E"): such a path could leave the pictures' folder on SEV's own origin. */
export function hasDotSegment(url) {
  const path = url.replace(/^[a-z]+:\/\/[^/]*/i, "").split(/[?#]/)[0];
  return path.toLowerCase().replaceAll("%2e", ".").split("/").some((s) => s === "." || s === "..");
}
