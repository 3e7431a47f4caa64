// entra-bulk report.html: the item table's sorting, filtering and paging. Vanilla, offline.
// The rows are the JSON in <script id="rows">; cells are set with textContent, never as HTML.
// The state lives in the URL's fragment (#q=…&status=…&action=…&sort=…&dir=…&page=…), so a
// filtered view can be bookmarked or sent to a colleague.
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("rows").textContent);
  var columns = data.columns;
  var rows = data.rows;
  var numeric = { item: true, http_status: true, attempts: true };
  var attention = { failed: 1, unknown: 1, drifted: 1, planned: 1, intent: 1, manual: 1 };
  var PAGE = 200;
  var state = { q: "", status: "", action: "", sort: "item", dir: "asc", page: 1 };
  var col = {};
  columns.forEach(function (name, index) { col[name] = index; });

  var body = document.querySelector("#items tbody");
  var query = document.getElementById("filter-text");
  var status = document.getElementById("filter-status");
  var action = document.getElementById("filter-action");
  var shown = document.getElementById("shown");
  var prev = document.getElementById("page-prev");
  var next = document.getElementById("page-next");
  var reset = document.getElementById("filter-reset");

  function readHash() {
    var text = window.location.hash.replace(/^#/, "");
    text.split("&").forEach(function (part) {
      var pair = part.split("=");
      var key = decodeURIComponent(pair[0] || "");
      if (Object.prototype.hasOwnProperty.call(state, key) && pair.length > 1) {
        var value = decodeURIComponent(pair.slice(1).join("="));
        state[key] = key === "page" ? Math.max(1, parseInt(value, 10) || 1) : value;
      }
    });
    if (!Object.prototype.hasOwnProperty.call(col, state.sort)) { state.sort = "item"; }
    if (state.dir !== "desc") { state.dir = "asc"; }
  }

  function writeHash() {
    var parts = [];
    Object.keys(state).forEach(function (key) {
      var value = String(state[key]);
      var quiet = { q: "", status: "", action: "", sort: "item", dir: "asc", page: "1" };
      if (value !== quiet[key]) { parts.push(key + "=" + encodeURIComponent(value)); }
    });
    var url = parts.length ? "#" + parts.join("&") : window.location.pathname;
    try {
      window.history.replaceState(null, "", url);
    } catch (error) {
      // Some viewers forbid history changes on file: pages; the view works without it.
    }
  }

  function needsAttention(row) {
    return attention[row[col.status]] === 1 ||
      (row[col.status] === "succeeded" && row[col.verified] === false);
  }

  function matches(row) {
    if (state.status === "attention") {
      if (!needsAttention(row)) { return false; }
    } else if (state.status && row[col.status] !== state.status) {
      return false;
    }
    if (state.action && row[col.action] !== state.action) { return false; }
    if (!state.q) { return true; }
    var needle = state.q.toLowerCase();
    for (var i = 0; i < row.length; i += 1) {
      if (row[i] !== null && String(row[i]).toLowerCase().indexOf(needle) !== -1) { return true; }
    }
    return false;
  }

  function compare(a, b) {
    var index = col[state.sort];
    var x = a[index];
    var y = b[index];
    var order = 0;
    if (x === null || x === undefined) { order = y === null || y === undefined ? 0 : 1; }
    else if (y === null || y === undefined) { order = -1; }
    else if (numeric[state.sort]) { order = x - y; }
    else { order = String(x).localeCompare(String(y)); }
    if (order === 0) { return a[col.item] - b[col.item]; }
    return state.dir === "desc" ? -order : order;
  }

  function cell(row, name) {
    var td = document.createElement("td");
    var value = row[col[name]];
    if (name === "verified") { value = value === true ? "yes" : value === false ? "no" : ""; }
    td.textContent = value === null || value === undefined ? "" : String(value);
    td.className = "c-" + name;
    if (name === "status") { td.className += " st st-" + row[col.status]; }
    return td;
  }

  function render() {
    var found = rows.filter(matches).sort(compare);
    var pages = Math.max(1, Math.ceil(found.length / PAGE));
    state.page = Math.min(state.page, pages);
    var first = (state.page - 1) * PAGE;
    var slice = found.slice(first, first + PAGE);
    var fragment = document.createDocumentFragment();
    slice.forEach(function (row) {
      var tr = document.createElement("tr");
      if (needsAttention(row)) { tr.className = "attention"; }
      columns.forEach(function (name) { tr.appendChild(cell(row, name)); });
      fragment.appendChild(tr);
    });
    body.textContent = "";
    body.appendChild(fragment);
    shown.textContent = found.length
      ? "Rows " + (first + 1) + "–" + (first + slice.length) + " of " + found.length +
        (found.length !== rows.length ? " (filtered from " + rows.length + ")" : "") +
        " · page " + state.page + " of " + pages
      : "No row matches (of " + rows.length + ").";
    prev.disabled = state.page <= 1;
    next.disabled = state.page >= pages;
    document.querySelectorAll("#items th").forEach(function (th) {
      var name = th.getAttribute("data-column");
      th.setAttribute("aria-sort", name === state.sort
        ? (state.dir === "asc" ? "ascending" : "descending") : "none");
    });
    query.value = state.q;
    status.value = state.status;
    action.value = state.action;
    document.body.setAttribute("data-rendered", String(slice.length));
    writeHash();
  }

  document.querySelectorAll("#items th button").forEach(function (button) {
    button.addEventListener("click", function () {
      var name = button.parentNode.getAttribute("data-column");
      if (state.sort === name) { state.dir = state.dir === "asc" ? "desc" : "asc"; }
      else { state.sort = name; state.dir = "asc"; }
      state.page = 1;
      render();
    });
  });
  query.addEventListener("input", function () { state.q = query.value; state.page = 1; render(); });
  status.addEventListener("change", function () {
    state.status = status.value; state.page = 1; render();
  });
  action.addEventListener("change", function () {
    state.action = action.value; state.page = 1; render();
  });
  prev.addEventListener("click", function () { state.page -= 1; render(); });
  next.addEventListener("click", function () { state.page += 1; render(); });
  reset.addEventListener("click", function () {
    state = { q: "", status: "", action: "", sort: "item", dir: "asc", page: 1 };
    render();
  });
  window.addEventListener("hashchange", function () { readHash(); render(); });
  document.getElementById("controls").hidden = false;
  readHash();
  render();
}());
