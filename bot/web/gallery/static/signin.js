// Exchange the one-time sign-in link for a session: a POST, so link previews and
// prefetchers that only fetch the page use nothing up.
(function () {
  "use strict";
  var form = document.getElementById("signin");
  if (form) form.submit();
})();
