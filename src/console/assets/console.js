// paymirror console: the change-feed tail. Every table with data-stream follows the
// server-sent events at that URL and puts each new status change on top. Text only
// (textContent), never markup: payment ids and statuses are data, not HTML.
"use strict";

(function () {
  const LIMIT = 100;

  function cell(row, text, className) {
    const td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    row.appendChild(td);
    return td;
  }

  function addChange(tbody, change) {
    const row = document.createElement("tr");
    row.className = "fresh";
    cell(row, change.observedAt.replace("T", " ").replace(/\.\d+/, "").replace("Z", " UTC"));
    cell(row, change.kind);
    const idCell = cell(row, "");
    const link = document.createElement("a");
    link.href = "/console/payments/" + encodeURIComponent(change.kind) + "/" + encodeURIComponent(change.id);
    link.textContent = change.id;
    idCell.appendChild(link);
    const previous = change.previousStatus;
    cell(row, previous || "\u2014", previous ? "status status-" + previous.toLowerCase() : "muted");
    cell(row, change.status, "status status-" + change.status.toLowerCase());
    tbody.insertBefore(row, tbody.firstChild);
    const empty = tbody.querySelector("tr.empty");
    if (empty) empty.remove();
    while (tbody.rows.length > LIMIT) tbody.deleteRow(tbody.rows.length - 1);
  }

  function follow(table) {
    const tbody = table.tBodies[0];
    const state = table.parentElement.querySelector("[data-stream-state]");
    const source = new EventSource(table.dataset.stream);
    source.addEventListener("change", function (event) {
      try {
        addChange(tbody, JSON.parse(event.data));
      } catch (e) {
        // A malformed event is skipped; the next one still shows.
      }
    });
    source.addEventListener("open", function () {
      if (state) state.textContent = "live";
      table.dataset.live = "true";
    });
    source.addEventListener("error", function () {
      table.dataset.live = "false";
      if (state) state.textContent = source.readyState === EventSource.CLOSED ? "stopped (sign in again)" : "reconnecting\u2026";
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    document.querySelectorAll("table[data-stream]").forEach(follow);
  });
})();
