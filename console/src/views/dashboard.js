// Dashboard: GET /api/dashboard/overview.
import { h } from "../dom.js";
import { call } from "../api.js";
import { bytes, when, duration } from "../format.js";

function stat(label, value, detail) {
  return h("div", { class: "stat" }, h("span", { class: "label" }, label),
    h("strong", {}, String(value)), detail ? h("span", { class: "detail" }, detail) : null);
}

// split is a count's non-zero statuses: "healthy 3 · critical 1".
function split(counts) {
  return Object.entries(counts.by_status || {}).filter(([, v]) => v > 0).map(([k, v]) => k + " " + v).join(" · ");
}

export async function dashboard() {
  const o = await call("get-dashboard-overview");
  const failed = (o.executions_24h.by_status || {}).failed || 0;
  return h("section", { "aria-labelledby": "dash-title" },
    h("h1", { id: "dash-title" }, "Dashboard"),
    h("div", { class: "stats" },
      stat("Datasources", o.datasources.total, split(o.datasources)),
      stat("Backup jobs", o.jobs.total, o.jobs.enabled + " enabled"),
      stat("Failures, last 24 h", failed, split(o.executions_24h)),
      stat("Queue", o.queue.depth, o.queue.running + " running · " + o.queue.scheduled + " scheduled"),
      stat("Storage used", bytes(o.storage.used_bytes), "free " + bytes(o.storage.free_bytes)),
    ),
    h("h2", {}, "Last backups"),
    o.last_backups.length === 0 ? h("p", {}, "No completed backup yet.") :
      h("table", {},
        h("thead", {}, h("tr", {}, h("th", {}, "Job"), h("th", {}, "Restorable as of"), h("th", {}, "Size"), h("th", {}, "Duration"))),
        h("tbody", {}, o.last_backups.map((b) => h("tr", {},
          h("td", {}, b.job_name), h("td", {}, when(b.finished_at)),
          h("td", {}, bytes(b.compressed_size_bytes)), h("td", {}, duration(b.duration_ms)))))),
    h("h2", {}, "Next runs"),
    o.next_runs.length === 0 ? h("p", {}, "No scheduled job.") :
      h("ul", {}, o.next_runs.map((r) => h("li", {}, r.job_name + " — " + when(r.next_execution_at) + " (" + r.schedule + ")"))),
  );
}
