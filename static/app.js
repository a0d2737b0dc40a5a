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
