// The requester's pages: drop files on the submit form, add pasted-text blocks, show the
// chosen template's details, and keep the job list from refreshing under a selection.
// A static file (no inline script), so the console's Content-Security-Policy holds.
"use strict";

document.addEventListener("DOMContentLoaded", function () {
  // Files: the whole drop zone takes dropped files, added to those already chosen.
  document.querySelectorAll(".rd-dropzone").forEach(function (zone) {
    const input = zone.querySelector("input[type=file]");
    const list = zone.querySelector(".rd-file-list");
    if (!input) return;
    const show = function () {
      if (!list) return;
      list.textContent = "";
      Array.from(input.files).forEach(function (file) {
        const item = document.createElement("li");
        item.textContent = file.name + " (" + Math.max(1, Math.round(file.size / 1024)) + " KB)";
        list.appendChild(item);
      });
    };
    input.addEventListener("change", show);
    ["dragenter", "dragover"].forEach(function (name) {
      zone.addEventListener(name, function (event) {
        event.preventDefault();
        zone.classList.add("rd-dragging");
      });
    });
    ["dragleave", "drop"].forEach(function (name) {
      zone.addEventListener(name, function () { zone.classList.remove("rd-dragging"); });
    });
    zone.addEventListener("drop", function (event) {
      event.preventDefault();
      const merged = new DataTransfer();
      Array.from(input.files).forEach(function (file) { merged.items.add(file); });
      Array.from(event.dataTransfer.files).forEach(function (file) { merged.items.add(file); });
      input.files = merged.files;
      show();
    });
  });

  // Pasted texts: Django's formset, one more block per click.
  const addText = document.getElementById("add-text");
  if (addText) {
    addText.addEventListener("click", function () {
      const total = document.getElementById("id_texts-TOTAL_FORMS");
      const blank = document.getElementById("texts-empty");
      const index = parseInt(total.value, 10);
      const block = document.createElement("div");
      block.className = "rd-text-block";
      block.innerHTML = blank.innerHTML.replace(/__prefix__/g, String(index)).replace(/__number__/g, String(index + 1));
      document.getElementById("text-blocks").appendChild(block);
      total.value = String(index + 1);
    });
  }

  // One submit per click: a second click while the first is on its way would make a second job.
  const requestForm = document.getElementById("request-form");
  if (requestForm) {
    requestForm.addEventListener("submit", function () {
      requestForm.querySelectorAll("input[type=submit]").forEach(function (button) { button.disabled = true; });
    });
  }

  // Templates: the chosen one's description, review policy and mode.
  const template = document.getElementById("id_template");
  if (template) {
    const showTemplate = function () {
      document.querySelectorAll("[data-template-detail]").forEach(function (detail) {
        detail.hidden = detail.getAttribute("data-template-detail") !== template.value;
      });
    };
    template.addEventListener("change", showTemplate);
    showTemplate();
  }
});

// A session that ended while a page was following a job: show the login page itself rather
// than swapping it into the page.
document.addEventListener("htmx:beforeSwap", function (event) {
  const landed = event.detail.xhr && event.detail.xhr.responseURL;
  if (landed && landed.indexOf("/login/") !== -1) {
    event.detail.shouldSwap = false;
    window.location.assign(landed);
  }
});

// The job list: skip a refresh while rows are selected for an action.
document.addEventListener("htmx:beforeRequest", function (event) {
  if (event.detail.elt.id === "rd-live-rows" && document.querySelector("#result_list input.action-select:checked")) {
    event.preventDefault();
  }
});

// Django's searchable picker (SelectFilter2, for earlier reports) labels its search icon with
// aria-label on a plain span, which assistive technology ignores; give the icon the image
// role its label needs. It builds the picker on "load", so this runs after it.
window.addEventListener("load", function () {
  document.querySelectorAll(".selector .search-label-icon[aria-label]").forEach(function (icon) {
    icon.setAttribute("role", "img");
  });
});
