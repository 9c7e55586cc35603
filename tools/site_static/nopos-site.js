// The course website's predictions: commit a guess (with how sure you are) before the
// answer shows. Commits stay in this browser (localStorage) and download as the
// JSON-lines log nopos.predict writes, so `make scoreboard` reads them
// (nopos/learner/scoreboard.py: the latest commit per question counts).
(function () {
  "use strict";
  var STORE = "nopos-predictions";
  var RANGE_LEVEL = 0.8;  // numbers ask for an 80% range, as in the notebooks

  function load() {
    try { return JSON.parse(localStorage.getItem(STORE)) || []; } catch (e) { return []; }
  }
  function save(records) {
    try { localStorage.setItem(STORE, JSON.stringify(records)); return true; } catch (e) { return false; }
  }
  function latestCommit(key) {
    var found = null;
    load().forEach(function (r) { if (r.event === "commit" && r.key === key) { found = r; } });
    return found;
  }

  // nopos.learner.scoreboard.judge, in JavaScript
  function judge(q, prediction) {
    if (prediction === null || q.actual === null || q.actual === undefined) { return null; }
    if (q.kind === "number") {
      var tol = typeof q.tolerance === "number" ? q.tolerance : 0.1;
      return Math.abs(prediction - q.actual) <= tol * Math.max(Math.abs(q.actual), 1e-12);
    }
    return prediction === q.actual;
  }
  function fmt(value, unit) {
    var text = typeof value === "number" ? String(Number(value.toPrecision(4))) : String(value);
    return unit ? text + " " + unit : text;
  }
  function describe(q, r) {
    var text = fmt(r.prediction, q.kind === "number" ? q.unit : "");
    if (q.kind === "choice" && r.confidence !== null) { text += " (" + Math.round(r.confidence * 100) + "% sure)"; }
    if (q.kind === "number" && r.low !== null) { text += " (80% range " + fmt(r.low) + " to " + fmt(r.high) + ")"; }
    return text;
  }

  function record(event, q, fields) {
    var r = {time: new Date().toISOString().replace(/\.\d+Z$/, "+00:00"), event: event, key: q.key,
             text: q.text, kind: q.kind, tolerance: q.tolerance, source: "site"};
    Object.keys(fields).forEach(function (k) { r[k] = fields[k]; });
    if (q.kind === "choice") { r.options = q.options; }
    return r;
  }

  function reveal(form, q, commit, focus) {
    var answer = document.getElementById("answer-" + form.id.replace(/^predict-/, ""));
    form.querySelectorAll("input, button").forEach(function (el) { el.disabled = true; });
    form.querySelector(".nopos-status").textContent = "Committed: " + describe(q, commit);
    if (!answer) { return; }
    var hit = judge(q, commit.prediction);
    var verdict = answer.querySelector(".nopos-verdict");
    var line = "Your prediction: " + describe(q, commit) + ". ";
    if (q.actual !== null && q.actual !== undefined) {
      line += "Result: " + fmt(q.actual, q.kind === "number" ? q.unit : "") + ". ";
      line += hit ? "\u2714 Right." : "\u2718 Not this time.";
      if (q.kind === "number" && commit.low !== null) {
        line += " Your 80% range " + (commit.low <= q.actual && q.actual <= commit.high ? "held it." : "missed it.");
      }
    }
    verdict.textContent = line;
    verdict.className = "nopos-verdict " + (hit === true ? "nopos-right" : hit === false ? "nopos-wrong" : "");
    showAnswer(answer);
    if (focus) { answer.querySelector(".nopos-answer-title").focus(); }
  }

  // the answer's body waits in a <template>: shown first, then filled, so that its
  // scripts (circuitsvis) run and draw into a visible box
  function showAnswer(answer) {
    answer.hidden = false;
    var body = answer.querySelector("template.nopos-answer-body");
    if (body) {
      answer.appendChild(document.importNode(body.content, true));
      body.remove();
      nameViews();
    }
  }
  window.nopos = {showAnswer: showAnswer};

  function commitFrom(form, q) {
    var status = form.querySelector(".nopos-status");
    if (q.kind === "choice") {
      var picked = form.querySelector("input[type=radio][name$='-choice']:checked");
      if (!picked) { status.textContent = "Pick an option first."; return null; }
      var sure = form.querySelector("input[type=radio][name$='-sure']:checked");
      return {prediction: picked.value, confidence: sure ? Number(sure.value) : null};
    }
    var guess = parseFloat(form.elements.guess.value);
    if (!isFinite(guess)) { status.textContent = "Type a number as your best guess first."; return null; }
    var low = parseFloat(form.elements.low.value), high = parseFloat(form.elements.high.value);
    if (!isFinite(low) && !isFinite(high)) {
      var half = 2 * q.tolerance * Math.abs(guess) || 1;
      low = guess - half; high = guess + half;
    }
    if (!(isFinite(low) && isFinite(high) && low <= guess && guess <= high)) {
      status.textContent = "Your range must hold your best guess: low \u2264 best guess \u2264 high.";
      return null;
    }
    return {prediction: guess, low: low, high: high, level: RANGE_LEVEL};
  }

  function setUp(form) {
    var q = JSON.parse(form.getAttribute("data-question"));
    var earlier = latestCommit(q.key);
    if (earlier) {
      if (q.kind === "choice") {
        form.querySelectorAll("input[type=radio]").forEach(function (el) {
          el.checked = el.value === String(el.name.endsWith("-sure") ? earlier.confidence : earlier.prediction);
        });
      } else {
        form.elements.guess.value = earlier.prediction;
        form.elements.low.value = earlier.low;
        form.elements.high.value = earlier.high;
      }
      reveal(form, q, earlier, false);
      return;
    }
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (latestCommit(q.key) && form.querySelector("button").disabled) { return; }
      var fields = commitFrom(form, q);
      if (!fields) { return; }
      var base = q.kind === "choice" ? {confidence: null} : {low: null, high: null, level: null};
      Object.keys(fields).forEach(function (k) { base[k] = fields[k]; });
      var commit = record("commit", q, base);
      var records = load();
      records.push(commit);
      if (q.actual !== null && q.actual !== undefined) {
        var shown = {actual: q.actual, hit: judge(q, commit.prediction)};
        Object.keys(base).forEach(function (k) { shown[k] = base[k]; });
        records.push(record("reveal", q, shown));
      }
      if (!save(records)) {
        form.querySelector(".nopos-status").textContent =
          "This browser does not keep data for this page (private mode?): download your predictions before leaving.";
      }
      reveal(form, q, commit, true);
    });
  }

  function download() {
    var lines = load().map(function (r) { return JSON.stringify(r); }).join("\n");
    var blob = new Blob([lines ? lines + "\n" : ""], {type: "application/x-ndjson"});
    var link = document.createElement("a");
    link.href = URL.createObjectURL(blob);
    link.download = "predictions.jsonl";
    document.body.appendChild(link);
    link.click();
    link.remove();
  }

  function count() {
    var n = load().filter(function (r) { return r.event === "commit"; }).length;
    document.querySelectorAll(".nopos-count").forEach(function (el) {
      el.textContent = n + " prediction" + (n === 1 ? "" : "s") + " committed on this site, in this browser.";
    });
  }

  // relative luminance (WCAG) of an "rgb(r, g, b)" colour
  function luminance(rgb) {
    var c = (rgb.match(/\d+(\.\d+)?/g) || [255, 255, 255]).slice(0, 3).map(function (v) {
      v = Number(v) / 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
  }

  // circuitsvis draws its views with canvases marked role="img" and no name: the view as a
  // whole is the figure (named by the page, data-alt), its canvases are hidden from
  // screen readers, also those it draws later (hover, reveal). Its head labels are white
  // on the head's colour, unreadable on light green: black text where black reads better.
  function nameViews() {
    document.querySelectorAll(".nopos-html-output[data-alt]").forEach(function (view) {
      view.setAttribute("role", "figure");
      view.setAttribute("aria-label", view.getAttribute("data-alt"));
      var hide = function () {
        view.querySelectorAll("canvas[role=img]:not([aria-hidden])").forEach(function (c) {
          c.setAttribute("aria-hidden", "true");
        });
        view.querySelectorAll("h4[style*=background]").forEach(function (label) {
          var bg = luminance(label.style.backgroundColor);
          if ((1.05 / (bg + 0.05)) < (bg + 0.05) / 0.05) { label.style.color = "#000"; }
        });
      };
      hide();
      new MutationObserver(hide).observe(view, {childList: true, subtree: true});
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    nameViews();
    document.querySelectorAll("form.nopos-predict").forEach(setUp);
    document.querySelectorAll(".nopos-download").forEach(function (b) { b.addEventListener("click", download); });
    document.querySelectorAll(".nopos-clear").forEach(function (b) {
      b.addEventListener("click", function () { save([]); count(); });
    });
    count();
  });
})();
