// Finds the SCORM 1.2 runtime the way the standard says a SCO must: up the
// chain of parents, then the opener's.
function findApi(win) {
  for (var tries = 0; win && tries < 10; tries++) {
    if (win.API) return win.API;
    if (win.parent && win.parent !== win) { win = win.parent; continue; }
    win = win.opener;
  }
  throw new Error("no SCORM 1.2 API (window.API) found");
}
