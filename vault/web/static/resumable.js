// Resumable uploads (tus 1.0) for large documents: the file goes up in PATCHes of data-chunk
// bytes (8 MiB unless the page says otherwise), each sealed by the server as it arrives, with
// live progress. After a network error the upload asks the server where it stands (HEAD) and
// continues from there; after a reload, choosing the same file again resumes the upload this
// browser started (its address is kept in localStorage, never the file's content). Boxes opt
// in with data-tus (the creation URL), data-submission, data-kind, data-partner and
// data-chunk; this script then handles their file input before upload.js sees it. The session
// cookie authenticates; the CSRF token proves the page is ours.
(function () {
  "use strict";
  var CHUNK = 8 * 1048576;
  var RETRIES = 5;
  var token = document.querySelector('meta[name="csrf-token"]');
  var messages = document.getElementById("upload-messages");
  var fallback = {starting: "Uploading…", done: "Received. Opening the receipt…",
                  failed: "The upload failed.", tooLarge: "The file is larger than the limit",
                  resuming: "Resuming the upload…", retrying: "Connection lost; retrying…"};
  function text(key) {
    return (messages && messages.dataset[key]) || fallback[key];
  }
  function formatBytes(n) {
    if (n < 1048576) return (n / 1024).toFixed(1) + " KiB";
    if (n < 1073741824) return (n / 1048576).toFixed(1) + " MiB";
    return (n / 1073741824).toFixed(2) + " GiB";
  }
  function b64(value) {
    return btoa(unescape(encodeURIComponent(value)));
  }
  function request(method, url, headers, body, onProgress) {
    return new Promise(function (resolve, reject) {
      var xhr = new XMLHttpRequest();
      xhr.open(method, url);
      xhr.setRequestHeader("Tus-Resumable", "1.0.0");
      if (method !== "HEAD" && method !== "GET") {
        xhr.setRequestHeader("X-CSRFToken", token ? token.content : "");
      }
      Object.keys(headers).forEach(function (name) { xhr.setRequestHeader(name, headers[name]); });
      if (onProgress) {
        xhr.upload.addEventListener("progress", function (e) { onProgress(e.loaded); });
      }
      xhr.addEventListener("load", function () { resolve(xhr); });
      xhr.addEventListener("error", function () { reject(new Error("network")); });
      xhr.addEventListener("abort", function () { reject(new Error("network")); });
      xhr.send(body === undefined ? null : body);
    });
  }
  function failure(xhr) {
    var body = {};
    try { body = JSON.parse(xhr.responseText); } catch (e) { body = {}; }
    return new Error(body.message || (text("failed") + " (" + xhr.status + ")"));
  }
  function wait(ms) { return new Promise(function (r) { setTimeout(r, ms); }); }

  function chunkSize(box) {
    var size = parseInt(box.dataset.chunk, 10);
    return size > 0 ? size : CHUNK;
  }
  // The browser's guess from the file name, if it is one the kind takes; otherwise the server
  // decides from the content (browsers differ: .gz may be application/x-gzip, .zst unknown).
  function declaredType(box, file) {
    var accepted = (box.dataset.accept || "").split(",");
    return accepted.indexOf(file.type) >= 0 ? file.type : "application/octet-stream";
  }

  function start(box, file, show) {
    var chunk = chunkSize(box);
    var key = "vault-tus:" + [box.dataset.submission, box.dataset.kind, box.dataset.partner,
                              file.name, file.size, file.lastModified].join(":");
    var stored = window.localStorage.getItem(key);

    function create() {
      var meta = ["submission " + b64(box.dataset.submission), "kind " + b64(box.dataset.kind),
                  "filename " + b64(file.name),
                  "filetype " + b64(declaredType(box, file))];
      if (box.dataset.partner) meta.push("partner " + b64(box.dataset.partner));
      return request("POST", box.dataset.tus, {"Upload-Length": String(file.size),
                                               "Upload-Metadata": meta.join(",")})
        .then(function (xhr) {
          if (xhr.status !== 201) throw failure(xhr);
          var url = xhr.getResponseHeader("Location");
          window.localStorage.setItem(key, url);
          return {url: url, offset: 0};
        });
    }
    function where(url) {
      return request("HEAD", url, {}).then(function (xhr) {
        if (xhr.status !== 200) return null;
        return {url: url, offset: parseInt(xhr.getResponseHeader("Upload-Offset"), 10)};
      });
    }
    function send(upload, attempt) {
      if (upload.offset >= file.size) return Promise.resolve(upload);
      var end = Math.min(upload.offset + chunk, file.size);
      return request("PATCH", upload.url, {"Upload-Offset": String(upload.offset),
                                           "Content-Type": "application/offset+octet-stream"},
                     file.slice(upload.offset, end),
                     function (loaded) { show(upload.offset + loaded); })
        .then(function (xhr) {
          if (xhr.status === 204) {
            upload.offset = parseInt(xhr.getResponseHeader("Upload-Offset"), 10);
            show(upload.offset);
            return send(upload, 0);
          }
          if (xhr.status !== 409 || attempt >= RETRIES) throw failure(xhr);
          return wait(1000).then(function () { return resync(upload, attempt + 1); });
        }, function () {
          if (attempt >= RETRIES) throw new Error(text("failed"));
          show(upload.offset, text("retrying"));
          return wait(1000 * Math.pow(2, attempt)).then(function () {
            return resync(upload, attempt + 1);
          });
        });
    }
    function resync(upload, attempt) {
      return where(upload.url).then(function (found) {
        if (!found) throw new Error(text("failed"));
        return send(found, attempt);
      });
    }
    var begun = stored ? where(stored).then(function (found) {
      if (found) { show(found.offset, text("resuming")); return found; }
      window.localStorage.removeItem(key);
      return create();
    }) : create();
    return begun.then(function (upload) { return send(upload, 0); })
      .then(function (upload) { return request("GET", upload.url, {}); })
      .then(function (xhr) {
        window.localStorage.removeItem(key);
        var body = JSON.parse(xhr.responseText);
        if (!body.receipt) throw failure(xhr);
        return body.receipt.receipt_url;
      });
  }

  document.querySelectorAll("div.upload[data-tus]").forEach(function (box) {
    var input = box.querySelector("input[type=file]");
    var bar = box.querySelector("progress");
    var status = box.querySelector(".progress-text");
    // Capture on the box runs before upload.js's listener on the input, which never sees it.
    box.addEventListener("change", function (event) {
      if (event.target !== input) return;
      event.stopPropagation();
      var file = input.files[0];
      if (!file) return;
      var limit = parseInt(box.dataset.limit, 10);
      if (file.size > limit) {
        status.textContent = text("tooLarge") + " (" + formatBytes(limit) + ")";
        return;
      }
      bar.hidden = false;
      bar.value = 0;
      status.textContent = text("starting");
      function show(sent, note) {
        var percent = Math.floor(sent * 100 / file.size);
        bar.value = percent;
        status.textContent = (note ? note + " " : "") + formatBytes(sent) + " / " +
          formatBytes(file.size) + " (" + percent + "%)";
      }
      start(box, file, show).then(function (receiptUrl) {
        status.textContent = text("done");
        window.location.assign(receiptUrl);
      }, function (error) {
        bar.hidden = true;
        status.textContent = error.message;
      });
    }, true);
  });
})();
