// Upload progress for htmx file uploads: fills the <progress> inside the uploading form.
document.addEventListener("htmx:xhr:progress", function (event) {
  var form = event.target.closest ? event.target.closest("form") : null;
  var bar = form ? form.querySelector("progress.upload-progress") : null;
  if (bar && event.detail.lengthComputable) {
    bar.hidden = false;
    bar.max = event.detail.total;
    bar.value = event.detail.loaded;
  }
});

// Once the upload has been answered, the bar has done its job.
document.addEventListener("htmx:afterRequest", function (event) {
  var form = event.target.closest ? event.target.closest("form") : null;
  var bar = form ? form.querySelector("progress.upload-progress") : null;
  if (bar) {
    bar.hidden = true;
  }
});

// A file over the form's limit is refused here, before it is sent: in the cloud a request over
// 32 MiB never reaches the app (Cloud Run answers a bare 413), so our own message must come first.
document.addEventListener("submit", function (event) { refuseOversizedFile(event); }, true);
document.addEventListener("htmx:confirm", function (event) { refuseOversizedFile(event); });

function refuseOversizedFile(event) {
  var form = event.target.closest ? event.target.closest("form[data-max-bytes]") : null;
  if (!form) { return; }
  var input = form.querySelector("input[type=file]");
  var file = input && input.files && input.files[0];
  var problem = form.querySelector("[data-testid=upload-error]");
  if (!file || file.size <= Number(form.dataset.maxBytes)) { return; }
  event.preventDefault();
  if (!problem) {
    problem = document.createElement("p");
    problem.className = "alert";
    problem.setAttribute("role", "alert");
    problem.dataset.testid = "upload-error";
    form.appendChild(problem);
  }
  problem.textContent = file.name + ": " + form.dataset.tooLarge;
}
