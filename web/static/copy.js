// Copy buttons: <button data-copy="ID"> copies the value of the input ID.
// Without JavaScript the field stays selectable by hand.
document.addEventListener("click", function (e) {
  var b = e.target.closest("button[data-copy]");
  if (!b) return;
  var f = document.getElementById(b.getAttribute("data-copy"));
  var out = document.getElementById("copied");
  f.select();
  var done = function (ok) { if (out) out.textContent = ok ? "Copied." : "Select the password and copy it by hand."; };
  if (navigator.clipboard) {
    navigator.clipboard.writeText(f.value).then(function () { done(true); }, function () { done(false); });
  } else {
    done(false);
  }
});
