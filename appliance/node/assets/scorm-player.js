// The node's SCORM player (issue 13): gives the SCO the runtime it looks
// for (scorm-again: window.API for SCORM 1.2, window.API_1484_11 for 2004),
// loads what a suspended attempt left, then opens the SCO in the frame.
// The runtime commits the SCO's data to the node (same origin, the commit
// URL names the launch), which records it as xAPI statements and State;
// when the SCO finishes, the learner goes back to the course page.
(function () {
  "use strict";
  var launch = JSON.parse(document.getElementById("launch").textContent);
  var settings = {
    lmsCommitUrl: launch.commit,
    autocommit: true,
    autocommitSeconds: 30,
    renderCommonCommitFields: true,
    terminateCommitParam: "final",
    logLevel: 5,
  };
  var api = launch.version === "2004" ? new window.Scorm2004API(settings) : new window.Scorm12API(settings);
  if (launch.version === "2004") window.API_1484_11 = api; else window.API = api;
  var back = function () { window.location.href = launch.returnUrl; };
  api.on(launch.version === "2004" ? "Terminate" : "LMSFinish", function () { setTimeout(back, 0); });
  // What the LMS gives every attempt (learner, launch data, mastery score),
  // then what a suspended attempt left (location, suspend data).
  api.loadFromJSON(launch.init);
  var open = function () { document.getElementById("sco").src = launch.sco; };
  fetch(launch.state, { method: "GET" })
    .then(function (r) { return r.ok ? r.json() : {}; })
    .then(function (saved) { if (saved && saved.cmi) api.loadFromJSON(saved.cmi); })
    .catch(function () {})
    .then(open);
})();
