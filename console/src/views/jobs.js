// Backup jobs: schedule in words, next and last run, run now; a job's
// executions.
import { h } from "../dom.js";
import { all, call, can, page } from "../api.js";
import { more } from "./more.js";
import { when, bytes, duration } from "../format.js";
import { statusBadge } from "./backups.js";

const days = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
const pad = (n) => String(n).padStart(2, "0");

// inWords says a five-field cron expression as a sentence where it is a
// common one, else returns it as it is.
export function inWords(expr, tz) {
  if (!expr) return "on demand only";
  const f = expr.trim().split(/\s+/);
  const zone = tz ? " (" + tz + ")" : " (UTC)";
  if (f.length !== 5) return expr;
  const [min, hour, dom, mon, dow] = f;
  const num = (s) => /^\d+$/.test(s);
  if (dom === "*" && mon === "*") {
    if (min === "*" && hour === "*" && dow === "*") return "every minute";
    const every = /^\*\/(\d+)$/.exec(min);
    if (every && hour === "*" && dow === "*") return "every " + every[1] + " minutes";
    if (num(min) && hour === "*" && dow === "*") return "every hour at minute " + min;
    if (num(min) && num(hour)) {
      const at = " at " + pad(hour) + ":" + pad(min) + zone;
      if (dow === "*") return "every day" + at;
      if (num(dow) && +dow <= 6) return "every " + days[+dow] + at;
    }
  }
  return expr + zone;
}

export async function jobs() {
  const [{ items: list, next }, dss] = await Promise.all([page("list-backup-jobs"), all("list-datasources")]);
  const names = Object.fromEntries(dss.map((d) => [d.id, d.name]));
  const row = (j) => h("tr", {},
    h("td", {}, h("a", { href: "#/jobs/" + encodeURIComponent(j.id) }, j.name), j.enabled ? null : h("span", { class: "detail" }, " (disabled)")),
    h("td", {}, names[j.datasource_id] || j.datasource_id),
    h("td", { title: j.schedule || "" }, inWords(j.schedule, j.timezone)),
    h("td", {}, j.next_execution_at ? when(j.next_execution_at) : "—"),
    h("td", {}, when(j.last_execution_at)),
    h("td", {}, can("run-backup-job") ? h("button", {
      type: "button", "aria-label": "Run " + j.name + " now",
      onclick: async (ev) => {
        ev.target.disabled = true;
        const x = await call("run-backup-job", { params: { id: j.id } });
        location.hash = "#/executions/" + encodeURIComponent(x.id);
      },
    }, "Run now") : null));
  const tbody = h("tbody", {}, list.map(row));
  return h("section", { "aria-labelledby": "jobs-title" },
    h("h1", { id: "jobs-title" }, "Backup jobs"),
    can("create-backup-job") ? h("p", {}, h("a", { class: "button", href: "#/jobs/new" }, "New backup job")) : null,
    list.length === 0 ? h("p", {}, "No backup job yet.") :
      h("table", {},
        h("thead", {}, h("tr", {}, h("th", {}, "Job"), h("th", {}, "Datasource"), h("th", {}, "Schedule"),
          h("th", {}, "Next run"), h("th", {}, "Last run"), h("th", {}, h("span", { class: "sr-only" }, "Actions")))),
        tbody),
    more(tbody, next, row));
}

export async function jobExecutions(refresh, id) {
  const [job, { items: list, next }] = await Promise.all([call("get-backup-job", { params: { id } }),
    page("list-backup-job-executions", { params: { id }, query: { limit: 50 } })]);
  const row = (x) => h("tr", {},
    h("td", {}, h("a", { href: "#/executions/" + encodeURIComponent(x.id) }, when(x.started_at || x.created_at))),
    h("td", {}, statusBadge(x.status)), h("td", {}, bytes(x.compressed_size_bytes)),
    h("td", {}, x.finished_at ? duration(x.duration_ms) : "—"));
  const tbody = h("tbody", {}, list.map(row));
  return h("section", { "aria-labelledby": "je-title" },
    h("p", {}, h("a", { href: "#/jobs" }, "← Backup jobs")),
    h("h1", { id: "je-title" }, job.name),
    h("p", { class: "detail" }, inWords(job.schedule, job.timezone) + " · compression " + job.compression),
    list.length === 0 ? h("p", {}, "No run yet.") :
      h("table", {},
        h("thead", {}, h("tr", {}, h("th", {}, "Started"), h("th", {}, "Status"), h("th", {}, "Size"), h("th", {}, "Duration"))),
        tbody),
    more(tbody, next, row));
}
