// The course website's predictions: commit a guess (with how sure you are) before the
// answer shows. Commits stay in this browser (localStorage) and download as the
// JSON-lines log nopos.predict writes, so `make scoreboard` reads them
// (nopos/learner/scoreboard.py: the first commit per question counts). A commit in one
// tab locks the same question in every other tab (re-read at commit time, and on
// `storage` events), so an answer seen in one cannot be committed in another.
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
  // a prediction is the first commitment (the scoreboard counts the first commit per question)
  function firstCommit(key) {
    var found = null;
    load().forEach(function (r) { if (!found && r.event === "commit" && r.key === key) { found = r; } });
    return found;
  }

  // What follows a prediction on a chapter page (its answer, the prose that discusses it,
  // the next form ...) is not in the page: _static/answers/<chapter>/<key>.js, added as a
  // <script> (fetch() of a local file is refused from file://) once that prediction is
  // committed, calls nopos.answers(src, {key, actual, body}); the body goes into the
  // prediction's empty .nopos-segment, its scripts run (circuitsvis bundles loaded once).
  var ANSWERS = {}, loading = {};
  function script(src) {
    if (!loading[src]) {
      loading[src] = new Promise(function (resolve, reject) {
        var tag = document.createElement("script");
        tag.src = src;
        tag.onload = resolve;
        tag.onerror = function () { reject(new Error("could not load " + src)); };
        document.head.appendChild(tag);
      });
    }
    return loading[src];
  }
  function segmentFor(slot) {
    var src = slot.getAttribute("data-answers");
    return script(src).then(function () {
      var found = ANSWERS[src];
      if (!found) { throw new Error("no answer in " + src); }
      return found;
    });
  }

  // nopos.learner.scoreboard.judge, in JavaScript
  function judge(q, prediction, actual) {
    if (prediction === null || actual === null || actual === undefined) { return null; }
    if (q.kind === "number") {
      var tol = typeof q.tolerance === "number" ? q.tolerance : 0.1;
      return Math.abs(prediction - actual) <= tol * Math.max(Math.abs(actual), 1e-12);
    }
    return prediction === actual;
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

  // A question asked before the previous one is revealed holds that one's answer in its own
  // segment: the verdict waits here until the answer's block is on the page.
  var verdicts = {};
  function fillVerdicts(root) {
    root.querySelectorAll(".nopos-answer[data-key]").forEach(function (answer) {
      var v = verdicts[answer.getAttribute("data-key")];
      var verdict = answer.querySelector(".nopos-verdict");
      if (!v || !verdict) { return; }
      verdict.textContent = v.line;
      verdict.className = "nopos-verdict " + (v.hit === true ? "nopos-right" : v.hit === false ? "nopos-wrong" : "");
    });
  }

  function slotOf(form) { return document.getElementById("after-" + form.id.replace(/^predict-/, "")); }

  function reveal(form, q, commit, focus) {
    var slot = slotOf(form);
    form.querySelectorAll("input, button").forEach(function (el) { el.disabled = true; });
    form.querySelector(".nopos-status").textContent = "Committed: " + describe(q, commit);
    if (!slot) { return Promise.resolve(null); }
    return showSegment(slot).then(function (found) {
      var answer = document.getElementById("answer-" + form.id.replace(/^predict-/, ""));
      var actual = found ? found.actual : null;
      var hit = judge(q, commit.prediction, actual);
      var line = "Your prediction: " + describe(q, commit) + ". ";
      if (actual !== null && actual !== undefined) {
        line += "Result: " + fmt(actual, q.kind === "number" ? q.unit : "") + ". ";
        line += hit ? "\u2714 Right." : "\u2718 Not this time.";
        if (q.kind === "number" && commit.low !== null) {
          line += " Your 80% range " + (commit.low <= actual && actual <= commit.high ? "held it." : "missed it.");
        }
      }
      verdicts[q.key] = {line: line, hit: hit};
      fillVerdicts(document);
      if (answer) {
        if (focus) { answer.querySelector(".nopos-answer-title").focus(); }
      } else if (focus && slot.firstElementChild) {
        slot.setAttribute("tabindex", "-1");
        slot.focus();
      }
      return found;
    });
  }

  // the segment goes in first, then its scripts run in order (a bundle before the view that
  // needs it; scripts made from markup do not run, so each is made anew) so that
  // circuitsvis draws into a visible box; the forms it brings are set up, committed ones
  // revealed in turn
  function showSegment(slot) {
    if (slot.filled) { return slot.filled; }
    slot.filled = segmentFor(slot).then(function (found) {
      var holder = document.createElement("template");
      holder.innerHTML = found.body;
      var body = document.importNode(holder.content, true);
      var scripts = Array.from(body.querySelectorAll("script"));
      slot.appendChild(body);
      return scripts.reduce(function (done, old) {
        return done.then(function () {
          if (old.src) { var src = old.getAttribute("src"); old.remove(); return script(src); }
          var fresh = document.createElement("script");
          fresh.textContent = old.textContent;
          old.replaceWith(fresh);
        });
      }, Promise.resolve()).then(function () {
        nameViews();
        pageToc();
        fillVerdicts(slot);
        slot.querySelectorAll("form.nopos-predict").forEach(setUp);
        return found;
      });
    }, function (error) {
      var note = document.createElement("p");
      note.textContent = "The rest of this part could not be loaded (" + error.message + "): run the notebook to see it.";
      slot.appendChild(note);
      return null;
    });
    return slot.filled;
  }
  // every segment, those inside segments too (the site's checks look at a page so)
  function showAll() {
    var waiting = Array.from(document.querySelectorAll(".nopos-segment")).filter(function (s) { return !s.filled; });
    if (!waiting.length) { return Promise.resolve(true); }
    return Promise.all(waiting.map(showSegment)).then(showAll);
  }
  window.nopos = {showAll: showAll, number: number,
                  answers: function (src, found) { ANSWERS[src] = found; }};

  // "On this page" lists the headings the reader can see: those of a revealed segment are
  // added once it is in (the theme builds the list from the page alone)
  function pageToc() {
    var nav = document.querySelector("nav.page-toc ul, .bd-toc-nav ul");
    var article = document.querySelector("article.bd-article");
    if (!nav || !article) { return; }
    var shown = {};
    nav.querySelectorAll("a[href^='#']").forEach(function (a) { shown[a.getAttribute("href").slice(1)] = true; });
    var last = null;
    article.querySelectorAll("section[id] > h2, section[id] > h3").forEach(function (h) {
      var id = h.parentElement.id;
      if (shown[id]) {
        last = nav.querySelector("a[href='#" + CSS.escape(id) + "']").closest("li");
        return;
      }
      var item = document.createElement("li");
      item.className = "toc-" + h.tagName.toLowerCase() + " nav-item toc-entry";
      var link = document.createElement("a");
      link.className = "reference internal nav-link";
      link.href = "#" + id;
      var text = h.cloneNode(true);
      text.querySelectorAll(".headerlink").forEach(function (a) { a.remove(); });
      link.innerHTML = text.innerHTML;
      item.appendChild(link);
      if (h.tagName === "H3" && last && last.classList.contains("toc-h2")) {
        var sub = last.querySelector("ul") || last.appendChild(document.createElement("ul"));
        sub.className = "nav section-nav flex-column";
        sub.appendChild(item);
      } else if (last && last.classList.contains("toc-h3") && h.tagName === "H3") {
        last.after(item);
      } else if (last) {
        (last.classList.contains("toc-h3") ? last.parentElement.closest("li") : last).after(item);
      } else {
        nav.prepend(item);
      }
      shown[id] = true;
      last = item;
    });
  }

  // A number as people type it: "6.5", "6,5" (a decimal comma), "-1e-3"; "50%" where the
  // question's unit is % (the unit typed along). Thousands separators are refused, not
  // guessed: "1,234" is 1.234 here, "1,234.5" is an error. Overflow ("1e999") is refused:
  // Infinity would be logged as null, a prediction lost.
  function number(text, what, unit) {
    text = String(text).trim().replace(/\u2212/g, "-");
    if (unit === "%") { text = text.replace(/\s*%$/, ""); }
    if (!text) { return {value: null}; }
    if (/^[+-]?(\d+([.,]\d*)?|[.,]\d+)([eE][+-]?\d+)?$/.test(text)) {
      var value = Number(text.replace(",", "."));
      if (!isFinite(value)) {
        return {error: what + ": \u201c" + text + "\u201d is too large to be a number here (at most about 1e308)."};
      }
      return {value: value};
    }
    var hint = /%$/.test(text) ? " Leave out the %." : "";
    return {error: what + ": \u201c" + text + "\u201d is not a number." + hint + " Write it with one decimal mark " +
                   "and no thousands separator, e.g. 6.5 or 6,5."};
  }
  // the range follows the best guess (guess \u00b1 twice the tolerance, as the notebooks
  // start it), in plain sight, until the reader changes it
  function followGuess(form, q) {
    var edited = false;
    [form.elements.low, form.elements.high].forEach(function (box) {
      box.addEventListener("input", function () { edited = true; });
    });
    form.elements.guess.addEventListener("input", function () {
      if (edited) { return; }
      var guess = number(form.elements.guess.value, "", q.unit).value;
      var half = 2 * (typeof q.tolerance === "number" ? q.tolerance : 0.1) * Math.abs(guess) || 1;
      if (guess === null || guess === undefined || !isFinite(guess - half) || !isFinite(guess + half)) {
        form.elements.low.value = form.elements.high.value = "";  // no range for what is no number
        return;
      }
      form.elements.low.value = String(Number((guess - half).toPrecision(4)));
      form.elements.high.value = String(Number((guess + half).toPrecision(4)));
    });
  }

  function commitFrom(form, q) {
    var status = form.querySelector(".nopos-status");
    if (q.kind === "choice") {
      var picked = form.querySelector("input[type=radio][name$='-choice']:checked");
      if (!picked) { status.textContent = "Pick an option first."; return null; }
      var sure = form.querySelector("input[type=radio][name$='-sure']:checked");
      return {prediction: picked.value, confidence: sure ? Number(sure.value) : null};
    }
    var guess = number(form.elements.guess.value, "Your best guess", q.unit);
    if (guess.error) { status.textContent = guess.error; return null; }
    if (guess.value === null) { status.textContent = "Type a number as your best guess first."; return null; }
    var low = number(form.elements.low.value, "The low end of your range", q.unit);
    var high = number(form.elements.high.value, "The high end of your range", q.unit);
    if (low.error || high.error) { status.textContent = low.error || high.error; return null; }
    if (low.value === null || high.value === null) {
      status.textContent = "Give both ends of the range you are 80% sure holds the result.";
      return null;
    }
    guess = guess.value; low = low.value; high = high.value;
    if (!(low <= guess && guess <= high)) {
      status.textContent = "Your range must hold your best guess: low \u2264 best guess \u2264 high.";
      return null;
    }
    return {prediction: guess, low: low, high: high, level: RANGE_LEVEL};
  }

  function restore(form, q, earlier) {
    if (q.kind === "choice") {
      form.querySelectorAll("input[type=radio]").forEach(function (el) {
        el.checked = el.value === String(el.name.endsWith("-sure") ? earlier.confidence : earlier.prediction);
      });
    } else {
      form.elements.guess.value = earlier.prediction;
      form.elements.low.value = earlier.low;
      form.elements.high.value = earlier.high;
    }
  }

  function setUp(form) {
    var q = JSON.parse(form.getAttribute("data-question"));
    var earlier = firstCommit(q.key);
    if (earlier) {
      restore(form, q, earlier);
      reveal(form, q, earlier, false);
      return;
    }
    // another tab (or window) of this site commits this question: lock it here too
    var locked = false;
    function lockFrom(other, focus) {
      locked = true;
      restore(form, q, other);
      return reveal(form, q, other, focus);
    }
    window.addEventListener("storage", function (event) {
      if (locked || (event.key !== STORE && event.key !== null)) { return; }
      var other = firstCommit(q.key);
      if (other) { lockFrom(other, false); }
    });
    if (q.kind === "number") { followGuess(form, q); }
    form.addEventListener("submit", function (event) {
      event.preventDefault();
      if (locked) { return; }
      var other = firstCommit(q.key);  // re-read: committed in another tab since this one opened
      if (other) {
        lockFrom(other, true).then(function () {
          form.querySelector(".nopos-status").textContent = "Already committed in another tab: " +
            describe(q, other) + ". Your first prediction is the one that counts.";
        });
        return;
      }
      var fields = commitFrom(form, q);
      if (!fields) { return; }
      locked = true;
      var base = q.kind === "choice" ? {confidence: null} : {low: null, high: null, level: null};
      Object.keys(fields).forEach(function (k) { base[k] = fields[k]; });
      var commit = record("commit", q, base);
      var records = load();
      records.push(commit);
      var kept = save(records);
      reveal(form, q, commit, true).then(function (found) {
        if (found && found.actual !== null && found.actual !== undefined) {
          var shown = {actual: found.actual, hit: judge(q, commit.prediction, found.actual)};
          Object.keys(base).forEach(function (k) { shown[k] = base[k]; });
          var now = load();
          now.push(record("reveal", q, shown));
          kept = save(now) && kept;
        }
        if (!kept) {
          form.querySelector(".nopos-status").textContent =
            "This browser does not keep data for this page (private mode?): download your predictions before leaving.";
        }
      });
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
    scrollables();
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
      new MutationObserver(function () { hide(); scrollables(); }).observe(view, {childList: true, subtree: true});
    });
  }

  // a box that scrolls sideways (a long output line, a wide attention view) must be
  // reachable with the keyboard to be scrolled: it joins the tab order
  function scrollables() {
    document.querySelectorAll("article pre, .nopos-html-output, .nopos-html-output div").forEach(function (box) {
      if (box.scrollWidth > box.clientWidth + 1 && !box.hasAttribute("tabindex") &&
          /(auto|scroll)/.test(getComputedStyle(box).overflowX)) {
        box.setAttribute("tabindex", "0");
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    nameViews();
    document.querySelectorAll("form.nopos-predict").forEach(setUp);
    document.querySelectorAll(".nopos-download").forEach(function (b) { b.addEventListener("click", download); });
    // forgetting cannot be undone: a modal dialog asks first ("Keep them" has the focus;
    // Esc keeps them too)
    document.querySelectorAll(".nopos-clear").forEach(function (b) {
      var dialog = document.querySelector("dialog.nopos-forget");
      b.addEventListener("click", function () {
        var n = load().filter(function (r) { return r.event === "commit"; }).length;
        dialog.querySelector(".nopos-forget-count").textContent = n + " prediction" + (n === 1 ? "" : "s");
        dialog.showModal();
        dialog.querySelector(".nopos-keep").focus();
      });
      dialog.querySelector(".nopos-keep").addEventListener("click", function () { dialog.close(); });
      dialog.querySelector(".nopos-forget-yes").addEventListener("click", function () {
        save([]);
        count();
        dialog.close();
      });
      dialog.addEventListener("close", function () { b.focus(); });
    });
    count();
  });
})();
