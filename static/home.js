/* The home page after a rejected favourite: the page answers POST /favorite with the form and
 * its error. Put "/" back in the address bar, so that reloading asks for the home page rather
 * than sending the form again (the browser's "resubmit?" prompt). An ES module: no inline script
 * under SEV's Content-Security-Policy.
 */
if (location.pathname === "/favorite" && document.getElementById("streamer-error")) {
  history.replaceState(null, "", "/");
}
