// Uploads a chosen file as the raw body of a PUT to the vault's API, showing live progress.
// The file is sent as it is (no form encoding), so the server streams it straight into the
// encryptor. The session cookie authenticates; the CSRF token proves the page is ours.
(function () {
  "use strict";
  var token = document.querySelector('meta[name="csrf-token"]');
  var messages = document.getElementById("upload-messages");
  function text(key) { return messages ? messages.dataset[key] : key; }
  function formatBytes(n) {
    if (n < 1024) return n + " B";
    if (n < 1048576) return (n / 1024).toFixed(1) + " KiB";
    if (n < 1073741824) return (n / 1048576).toFixed(1) + " MiB";
    return (n / 1073741824).toFixed(2) + " GiB";
  }
  document.querySelectorAll("div.upload").forEach(function (box) {
    var input = box.querySelector("input[type=file]");
    var bar = box.querySelector("progress");
    var status = box.querySelector(".progress-text");
    input.addEventListener("change", function () {
      var file = input.files[0];
      if (!file) return;
      var limit = parseInt(box.dataset.limit, 10);
      if (file.size > limit) {
        status.textContent = text("tooLarge") + " (" + formatBytes(limit) + ")";
        return;
      }
      var xhr = new XMLHttpRequest();
      xhr.open("PUT", box.dataset.url);
      xhr.setRequestHeader("Content-Type", file.type || "application/octet-stream");
      xhr.setRequestHeader("Content-Disposition",
        "attachment; filename*=UTF-8''" + encodeURIComponent(file.name));
      xhr.setRequestHeader("X-CSRFToken", token ? token.content : "");
      bar.hidden = false;
      bar.value = 0;
      xhr.upload.addEventListener("progress", function (event) {
        if (!event.lengthComputable) return;
        var percent = Math.floor(event.loaded * 100 / event.total);
        bar.value = percent;
        status.textContent = formatBytes(event.loaded) + " / " + formatBytes(event.total) +
          " (" + percent + "%)";
      });
      xhr.addEventListener("load", function () {
        var body = {};
        try { body = JSON.parse(xhr.responseText); } catch (e) { body = {}; }
        if (xhr.status === 201 && body.receipt_url) {
          status.textContent = text("done");
          window.location.assign(body.receipt_url);
        } else {
          bar.hidden = true;
          status.textContent = body.message || (text("failed") + " (" + xhr.status + ")");
        }
      });
      xhr.addEventListener("error", function () {
        bar.hidden = true;
        status.textContent = text("failed");
      });
      status.textContent = text("starting");
      xhr.send(file);
    });
  });
})();
