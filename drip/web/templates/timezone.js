(function () {
  var select = document.getElementById("timezone");
  if (!select || select.value || select.hasAttribute("aria-invalid")) { return; }
  var found;
  try { found = Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (e) { return; }
  if (!found) { return; }
  var option = Array.prototype.find.call(select.options, function (o) { return o.value === found; });
  if (!option) { option = new Option(found, found); select.add(option, 1); }
  Array.prototype.forEach.call(select.options, function (o) { o.removeAttribute("selected"); });
  option.setAttribute("selected", "");
  option.selected = true;
  document.getElementById("timezone-found").hidden = false;
})();
