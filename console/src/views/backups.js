// The Backups tab (spec §5): the datasources with completed backups, each
// one's backups with the status of every stored copy, and the Restore
// dialog (storage, target, safety backup, the confirmation phrase).
import { h, replace } from "../dom.js";
import { all, call, can, holds, page, url, APIError } from "../api.js";
import { bytes, when, duration } from "../format.js";
import { badge } from "./datasources.js";
import { more } from "./more.js";

const copyBadges = { available: "ok", missing: "bad", corrupt: "bad", unreachable: "warn", unknown: "none" };

function copyStatus(s) {
  return h("li", {}, h("span", { class: "badge " + (copyBadges[s.status] || "none") }, s.status), " ",
    s.storage_location_name || s.storage_location_id, s.error_message ? h("span", { class: "detail" }, " — " + s.error_message) : null);
}

export async function backupDatasources() {
  const list = (await call("list-backup-datasources")) || [];
  return h("section", { "aria-labelledby": "bk-title" },
    h("h1", { id: "bk-title" }, "Backups"),
    list.length === 0 ? h("p", {}, "No completed backup yet.") :
      h("table", {},
        h("thead", {}, h("tr", {}, h("th", {}, "Datasource"), h("th", {}, "Type"), h("th", {}, "Status"),
          h("th", {}, "Backups"), h("th", {}, "Last backup"))),
        h("tbody", {}, list.map((d) => h("tr", {},
          h("td", {}, h("a", { href: "#/backups/" + encodeURIComponent(d.datasource_id) }, d.name)),
          h("td", {}, d.type), h("td", {}, badge(d.status)), h("td", {}, String(d.backup_count)),
          h("td", {}, when(d.last_backup_at)))))));
}

export async function datasourceBackups(refresh, id) {
  const [ds, { items: list, next }] = await Promise.all([
    call("get-datasource", { params: { id } }),
    page("list-datasource-backups", { params: { datasourceId: id } }),
  ]);
  const error = h("p", { class: "error", role: "alert" });
  const actions = (b) => {
    if (!b.restorable) return h("span", { class: "detail" }, b.restore_reason || "not restorable");
    const label = " the backup of " + when(b.finished_at);
    return [
      can("create-download-link") ? h("button", {
        type: "button", "aria-label": "Download" + label, onclick: () => download(b, error),
      }, "Download") : null,
      can("restore-backup") ? h("button", {
        type: "button", "aria-label": "Restore" + label, onclick: () => restoreDialog(ds, b),
      }, "Restore") : null,
    ];
  };
  const row = (b) => h("tr", {},
    h("td", {}, when(b.finished_at), b.pinned ? h("span", { class: "badge none pin", title: "Pinned: retention keeps it" }, "pinned") : null),
    h("td", {}, bytes(b.compressed_size_bytes)), h("td", {}, duration(b.duration_ms)),
    h("td", {}, h("ul", { class: "copies" }, (b.storages || []).map(copyStatus))),
    h("td", { class: "row-actions" }, actions(b)));
  const tbody = h("tbody", {}, list.map(row));
  return h("section", { "aria-labelledby": "dsb-title" },
    h("p", {}, h("a", { href: "#/backups" }, "← Backups")),
    h("h1", { id: "dsb-title" }, "Backups of " + ds.name),
    error,
    list.length === 0 ? h("p", {}, "No backup of this datasource.") :
      h("table", {},
        h("thead", {}, h("tr", {}, h("th", {}, "Finished"), h("th", {}, "Size"), h("th", {}, "Duration"),
          h("th", {}, "Copies"), h("th", {}, h("span", { class: "sr-only" }, "Actions")))),
        tbody),
    more(tbody, next, row));
}

// download asks the API for a short-lived link to the backup (a link
// cannot carry the token) and lets the browser save what it points to.
async function download(b, error) {
  error.textContent = "";
  try {
    const link = await call("create-download-link", { params: { id: b.id } });
    const a = h("a", { href: url(link.url).href, download: "", hidden: true });
    document.body.append(a);
    a.click();
    a.remove();
  } catch (err) {
    error.textContent = err.message;
  }
}

// restoreDialog asks what to restore where, and for the phrase that
// confirms it, then queues the restore and opens its live log.
async function restoreDialog(ds, b) {
  const sameType = (await all("list-datasources")).filter((d) => d.type === ds.type && d.id !== ds.id);
  const mayRestore = holds("backups.restore");
  const mayVerify = holds("backups.restore_verify");
  const error = h("p", { class: "error", role: "alert" });
  const storage = h("select", { id: "rs-storage" },
    h("option", { value: "" }, "Any copy (in order)"),
    (b.storages || []).filter((s) => s.status === "available").map((s) =>
      h("option", { value: s.storage_location_id }, s.storage_location_name || s.storage_location_id)));
  const target = h("select", { id: "rs-target" },
    h("option", { value: "" }, ds.name + " itself (its current content is replaced)"),
    sameType.map((d) => h("option", { value: d.id }, d.name)));
  const safety = h("input", { id: "rs-safety", type: "checkbox", checked: true });
  const verify = h("input", { id: "rs-verify", type: "checkbox", checked: !mayRestore, disabled: !mayRestore || !mayVerify });
  const phrase = h("input", { id: "rs-phrase", autocomplete: "off", required: true });
  const phraseLabel = h("label", { for: "rs-phrase" });
  const sync = () => {
    const v = verify.checked;
    phraseLabel.textContent = "Type " + (v ? "VERIFICAR RESTORE" : "RESTAURAR") + " to confirm";
    target.disabled = safety.disabled = v;
  };
  verify.addEventListener("change", sync);
  const dialog = h("dialog", { class: "restore", "aria-labelledby": "rs-title" },
    h("form", {
      method: "dialog",
      onsubmit: async (ev) => {
        ev.preventDefault();
        error.textContent = "";
        const body = { confirmation_phrase: phrase.value, storage_location_id: storage.value || undefined };
        if (verify.checked) body.verification_mode = true;
        else Object.assign(body, { safety_backup: safety.checked, target_datasource_id: target.value || undefined });
        try {
          const x = await call("restore-backup", { params: { executionId: b.id }, body });
          dialog.close();
          location.hash = "#/executions/" + encodeURIComponent(x.id);
        } catch (err) {
          error.textContent = err instanceof APIError && err.fields.length
            ? err.fields.map((f) => f.message).join("; ") : err.message;
        }
      },
    },
      h("h2", { id: "rs-title" }, "Restore the backup of " + when(b.finished_at)),
      h("p", { class: "warning" }, "Without another target, " + ds.name + " is replaced by this backup. " +
        "Verification restores into a temporary database and touches nothing."),
      h("label", { for: "rs-storage" }, "From"), storage,
      h("label", { for: "rs-target" }, "Into"), target,
      h("label", {}, safety, " Back up the current state first (kept until unpinned)"),
      mayVerify ? h("label", {}, verify, " Verification only (restore into a temporary database and check it)") : null,
      phraseLabel, phrase,
      error,
      h("div", { class: "actions" },
        h("button", { type: "button", onclick: () => dialog.close() }, "Cancel"),
        h("button", { type: "submit" }, "Restore"))));
  sync();
  dialog.addEventListener("close", () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
}

const execBadges = { completed: "ok", failed: "bad", cancelled: "bad", running: "warn", queued: "none" };

// statusBadge is an execution's status as a badge.
export function statusBadge(status) {
  return h("span", { class: "badge " + (execBadges[status] || "none") }, status);
}

// execution shows one execution and its log, followed live.
export async function execution(refresh, id) {
  const [x, logs] = await Promise.all([call("get-execution", { params: { id } }), call("list-execution-logs", { params: { id } })]);
  return h("section", { "aria-labelledby": "ex-title" },
    h("h1", { id: "ex-title" }, x.operation + " ", statusBadge(x.status)),
    h("p", { class: "detail" }, "Started " + when(x.started_at) + (x.finished_at ? " · finished " + when(x.finished_at) + " · " + duration(x.duration_ms) : "")),
    x.error_message ? h("p", { class: "error" }, x.error_message) : null,
    h("pre", { class: "log", "aria-label": "Log" }, (logs || []).map((l) => when(l.at) + " " + l.level + " " + l.message + "\n")));
}
