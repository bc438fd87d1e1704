// A cmi5 AU as the cmi5 specification (section 8 and 9) asks of one:
// read the launch parameters, POST the fetch URL once for the auth token,
// read LMS.LaunchData and the learner preferences, then send initialized,
// completed, passed or failed (score against masteryScore) and terminated,
// each in the session's context template; then go to returnURL if any.
(function () {
  "use strict";
  var q = new URLSearchParams(location.search);
  var endpoint = q.get("endpoint"), fetchUrl = q.get("fetch"), registration = q.get("registration");
  var activityId = q.get("activityId"), actor = JSON.parse(q.get("actor") || "null");
  var status = document.getElementById("status");
  var started = Date.now(), auth = null, launchData = null;

  function xapi(method, path, body) {
    var headers = { "Authorization": "Basic " + auth, "X-Experience-API-Version": "1.0.3" };
    if (body !== undefined) headers["Content-Type"] = "application/json";
    return fetch(endpoint.replace(/\/?$/, "/") + path, {
      method: method, headers: headers, body: body === undefined ? undefined : JSON.stringify(body),
    }).then(function (r) {
      if (!r.ok) throw new Error(method + " " + path + ": HTTP " + r.status);
      return r.status === 204 ? null : r.json();
    });
  }

  function statement(verb, extra) {
    var context = JSON.parse(JSON.stringify(launchData.contextTemplate));
    context.registration = registration;
    var categories = [{ id: "https://w3id.org/xapi/cmi5/context/categories/cmi5" }];
    if (extra.moveon) categories.push({ id: "https://w3id.org/xapi/cmi5/context/categories/moveon" });
    context.contextActivities = context.contextActivities || {};
    context.contextActivities.category = categories;
    var s = {
      id: crypto.randomUUID(), actor: actor, verb: { id: verb },
      object: { objectType: "Activity", id: activityId }, context: context,
      timestamp: new Date().toISOString(),
    };
    if (extra.result) s.result = extra.result;
    return xapi("POST", "statements", [s]);
  }

  function duration() {
    return "PT" + ((Date.now() - started) / 1000).toFixed(2) + "S";
  }

  var query = function (params) {
    return Object.keys(params).map(function (k) { return k + "=" + encodeURIComponent(params[k]); }).join("&");
  };

  fetch(fetchUrl, { method: "POST" })
    .then(function (r) { return r.json(); })
    .then(function (t) {
      if (!t["auth-token"]) throw new Error("fetch URL: " + JSON.stringify(t));
      auth = t["auth-token"];
      var state = query({ activityId: activityId, agent: JSON.stringify(actor), registration: registration, stateId: "LMS.LaunchData" });
      return xapi("GET", "activities/state?" + state);
    })
    .then(function (d) {
      launchData = d;
      return xapi("GET", "agents/profile?" + query({ agent: JSON.stringify(actor), profileId: "cmi5LearnerPreferences" }))
        .catch(function () { return null; });
    })
    .then(function () { return statement("http://adlnet.gov/expapi/verbs/initialized", {}); })
    .then(function () {
      status.textContent = "Ready";
      document.getElementById("finish").disabled = false;
    })
    .catch(function (e) { status.textContent = "Could not start: " + e.message; });

  document.getElementById("finish").addEventListener("click", function () {
    var scaled = document.getElementById("answer").value === "knees" ? 1 : 0.5;
    var mastery = launchData.masteryScore;
    var passed = mastery === undefined || scaled >= mastery;
    statement("http://adlnet.gov/expapi/verbs/completed", { moveon: true, result: { completion: true, duration: duration() } })
      .then(function () {
        var verb = passed ? "http://adlnet.gov/expapi/verbs/passed" : "http://adlnet.gov/expapi/verbs/failed";
        return statement(verb, { moveon: true, result: { success: passed, score: { scaled: scaled }, duration: duration() } });
      })
      .then(function () { return statement("http://adlnet.gov/expapi/verbs/terminated", { result: { duration: duration() } }); })
      .then(function () {
        status.textContent = passed ? "Passed" : "Not passed yet";
        if (launchData.returnURL) location.href = launchData.returnURL;
      })
      .catch(function (e) { status.textContent = "Could not record: " + e.message; });
  });
})();
