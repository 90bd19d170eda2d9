// A new backup job: its datasource, where it writes, when (the schedule
// read back in words as it is typed), compression and how many backups
// it keeps; the API's field errors beside their fields.
import { h } from "../dom.js";
import { all, call, APIError } from "../api.js";
import { inWords } from "./jobs.js";

export async function jobForm() {
  const [dss, locs] = await Promise.all([all("list-datasources"), all("list-storage-locations")]);
  const errors = {};
  const row = (name, label, input, hint) => {
    input.id = "jf-" + name;
    errors[name] = h("span", { class: "error field-error" });
    return h("div", { class: "field" }, h("label", { for: input.id }, label), input, hint || null, errors[name]);
  };
  const name = h("input", { required: true, autocomplete: "off" });
  const ds = h("select", {}, (dss || []).map((d) => h("option", { value: d.id }, d.name + " (" + d.type + ")")));
  const boxes = (locs || []).map((l, i) => h("input", { type: "checkbox", value: l.id, id: "jf-loc-" + i, checked: i === 0 }));
  const schedule = h("input", { placeholder: "0 2 * * *", autocomplete: "off" });
  const words = h("span", { class: "hint", "aria-live": "polite" }, inWords(""));
  const tz = h("input", { placeholder: "UTC", autocomplete: "off" });
  const sync = () => { words.textContent = inWords(schedule.value, tz.value); };
  schedule.addEventListener("input", sync);
  tz.addEventListener("input", sync);
  const compression = h("select", {}, ["gzip", "zstd", "lz4", "none"].map((c) => h("option", { value: c }, c)));
  const keep = h("input", { type: "number", min: 0, placeholder: "every backup" });
  const general = h("p", { class: "error", role: "alert" });
  const form = h("form", {
    class: "stacked",
    onsubmit: async (ev) => {
      ev.preventDefault();
      general.textContent = "";
      Object.values(errors).forEach((e) => { e.textContent = ""; });
      const body = { name: name.value, datasource_id: ds.value, compression: compression.value,
        storage_location_ids: boxes.filter((b) => b.checked).map((b) => b.value) };
      if (schedule.value.trim()) body.schedule = schedule.value.trim();
      if (tz.value.trim()) body.timezone = tz.value.trim();
      if (keep.value !== "") body.retention = { max_backups: Number(keep.value), auto_delete: true };
      try {
        const job = await call("create-backup-job", { body });
        location.hash = "#/jobs/" + encodeURIComponent(job.id);
      } catch (err) {
        if (!(err instanceof APIError)) throw err;
        const rest = [];
        for (const fe of err.fields) {
          const slot = errors[(fe.location || "").replace(/^body\./, "").split(/[.[]/)[0]];
          if (slot) slot.textContent = fe.message; else rest.push(fe.message);
        }
        general.textContent = err.fields.length && !rest.length ? "Check the fields marked above." : [err.message, ...rest].join(" ");
      }
    },
  },
    row("name", "Name", name),
    row("datasource_id", "Datasource", ds),
    h("fieldset", {}, h("legend", {}, "Storage locations (the first checked is preferred)"),
      boxes.map((b, i) => h("label", { class: "check" }, b, " " + locs[i].name)),
      (errors.storage_location_ids = h("span", { class: "error field-error" }))),
    row("schedule", "Schedule (five-field cron; empty: on demand only)", schedule, words),
    row("timezone", "Time zone (IANA, e.g. America/Sao_Paulo)", tz),
    row("compression", "Compression", compression),
    row("retention", "Backups kept (older ones are deleted)", keep),
    general,
    h("div", { class: "actions" }, h("a", { href: "#/jobs" }, "Cancel"), h("button", { type: "submit" }, "Create job")));
  return h("section", { "aria-labelledby": "jn-title" }, h("h1", { id: "jn-title" }, "New backup job"), form);
}
