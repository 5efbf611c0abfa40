// Stage rounds: a component's CSV file is read in the browser into the form's text field, so
// the form posts it as text (the vault accepts no multipart file parts: they could be spooled
// to disk as plaintext). Without JavaScript the CSV can be pasted instead.
"use strict";
(function () {
  var LIMIT = 1024 * 1024;
  document.querySelectorAll("input[type=file][data-csv-into]").forEach(function (input) {
    input.addEventListener("change", function () {
      var file = input.files && input.files[0];
      var target = document.getElementById(input.dataset.csvInto);
      var form = input.form;
      if (!file || !target || !form) { return; }
      if (file.size > LIMIT) {
        window.alert(input.dataset.tooLarge);
        input.value = "";
        return;
      }
      var reader = new FileReader();
      reader.onload = function () {
        target.value = String(reader.result).replace(/^\uFEFF/, "");
        form.elements.filename.value = file.name;
      };
      reader.readAsText(file, "utf-8");
    });
  });
})();
